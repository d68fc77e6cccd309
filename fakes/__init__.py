"""Local stand-ins for the outside services these machines cannot reach (WeChat, WeChat Pay),
speaking their real protocols. Imported only by --dev/--demo, the tests and the benchmarks;
never part of the production image."""
