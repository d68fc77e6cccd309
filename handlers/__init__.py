"""HTTP and websocket handlers: parse, authorize, call the domain, shape the reply."""
