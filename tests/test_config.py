"""config.py: every option read once, from the environment and the command line (which wins),
checked at start with a clear message."""
import pytest

import config
from config import Config


def load(*args: str, **environ: str) -> Config:
    return config.load(["server.py", *args], environ)


def test_a_start_on_mongodb_without_a_receipt_key_is_refused_and_the_embedded_engine_makes_one():
    with pytest.raises(SystemExit, match="--receipt_key_file is required with MONGODB_URI"):
        load(MONGODB_URI="mongodb://db.example/gifts")
    assert load(MONGODB_URI="mongodb://db.example/gifts", RECEIPT_KEY_FILE="k.pem").receipt_key_path() == "k.pem"
    assert load(DATA_DIR="/tmp/somewhere").receipt_key_path() == "/tmp/somewhere/receipt-key.pem"


def test_another_beacon_chain_than_quicknet_is_refused_unless_every_relay_is_loopback(tmp_path):
    chain = tmp_path / "chain.json"
    chain.write_text('{"chain_hash": "%s", "public_key": "%s", "genesis": 1, "period": 0.5}' % ("ab" * 32, "cd" * 96))
    with pytest.raises(SystemExit, match="allowed only with loopback relays"):
        load(BEACON_CHAIN=str(chain), BEACON_RELAYS="http://127.0.0.1:9000,https://api.drand.sh")
    assert load(BEACON_CHAIN=str(chain), BEACON_RELAYS="http://127.0.0.1:9000").beacon_chain_params().period == 0.5
    assert load().beacon_chain_params().chain_hash.startswith("52db9ba7")  # quicknet, pinned


def test_an_option_comes_from_its_environment_variable_and_the_command_line_wins():
    assert load(NOTIFY_RATE="5").notify_rate == 5.0
    assert load("--notify_rate", "7", NOTIFY_RATE="5").notify_rate == 7.0
    assert load("--notify_rate=8").notify_rate == 8.0


@pytest.mark.parametrize("value, on", [("1", True), ("yes", True), ("on", True), ("true", True),
                                       ("0", False), ("no", False), ("off", False), ("false", False)])
def test_a_boolean_reads_the_same_words_in_the_environment_and_on_the_command_line(value, on):
    assert load(REALTIME_POLLING=value).realtime_polling is on
    # Tornado alone reads any value but false/0/f as on: `--dev=no` would turn development on.
    assert load(f"--realtime_polling={value}").realtime_polling is on


def test_a_bare_flag_is_on():
    assert load("--realtime_polling").realtime_polling is True


@pytest.mark.parametrize("args, environ, message", [
    (["--port", "abc"], {}, "--port: 'abc' is not a valid int"),
    ([], {"PORT": "abc"}, "environment variable PORT: not a valid int"),
    (["--dev=maybe"], {}, "--dev: 'maybe' is not 1/0, true/false, yes/no or on/off"),
    ([], {"DEV": "maybe"}, "environment variable DEV: not a valid bool"),
    (["--role", "both"], {}, "--role must be all, web or scheduler"),
    (["--log_format", "xml"], {}, "--log_format must be text or json"),
    (["--notify_page_size", "5"], {}, "--notify_page_size must be from 10 to 5000"),
    (["--image_hosts", "https://x.example"], {}, "--image_hosts: not a host name"),
    (["--dev", "--address", "0.0.0.0"], {}, "--dev/--demo refused: --address 0.0.0.0 is not a loopback address"),
    (["--dev"], {"MONGODB_URI": "mongodb://db.example:27017"}, "--dev/--demo refused: MONGODB_URI is not a local"),
    ([], {"WECHATPAY_MCHID": "1900000001"}, "WeChat Pay configuration: WECHATPAY_PRIVATE_KEY_FILE"),
])
def test_an_unusable_setting_stops_the_start_with_a_message_naming_it(args, environ, message):
    with pytest.raises(SystemExit) as stopped:
        load(*args, **environ)
    assert str(stopped.value).startswith(message)


def test_a_secret_never_appears_in_the_message_about_it():
    with pytest.raises(SystemExit) as stopped:
        load(WECHATPAY_MCHID="1900000001", WECHATPAY_APIV3_KEY="s3cr3t-apiv3-key-never-shown-000",
             WECHATPAY_PRIVATE_KEY_FILE="/nonexistent/apiclient_key.pem")
    assert "s3cr3t" not in str(stopped.value)


def test_development_listens_and_answers_only_on_loopback_unless_told():
    dev = load("--dev")
    assert (dev.listen_address, dev.host_names) == ("127.0.0.1", ["localhost", "127.0.0.1", "::1"])
    production = load()
    assert (production.listen_address, production.host_names) == (None, ["*"])
    assert load("--allowed_hosts", "Gift.Example.com, [::1]").host_names == ["gift.example.com", "::1"]


def test_demo_is_development_and_roles_say_what_runs():
    assert load("--demo").development
    assert (load("--role", "web").web_role, load("--role", "web").scheduler_role) == (True, False)
    assert (load("--role", "scheduler").web_role, load("--role", "scheduler").scheduler_role) == (False, True)
