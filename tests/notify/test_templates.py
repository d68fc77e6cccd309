"""Templates from configuration, and values cut to WeChat's field limits."""
import pytest

from notify.templates import fit, parse_config
from fakes.wechat import field_error
from tests.notify.support import CONFIG_JSON
from lottery.errors import ConfigError


@pytest.mark.parametrize("key, value, expected", [
    ("thing1", "一" * 30, "一" * 19 + "…"),
    ("thing2", "短", "短"),
    ("phrase3", "恭喜你中奖啦朋友", "恭喜你中奖"),
    ("phrase4", "OK 中奖!", "中奖"),
    ("name5", "一个名字特别特别特别长的人", "一个名字特别特别特别"),
    ("name6", "a" * 25, "a" * 20),
    ("character_string7", "x" * 40, "x" * 32),
    ("thing8", "", "-"),
    ("thing9", "换\n行  多空格", "换 行 多空格"),
])
def test_values_are_cut_to_their_field_type_and_wechat_accepts_them(key, value, expected):
    assert fit(key, value) == expected
    assert field_error(key, fit(key, value)) is None  # the fake checks as WeChat does


def test_the_test_configuration_renders_every_kind():
    config = parse_config(CONFIG_JSON)
    template, page, data = config.render("gift_won", {"order_id": "abc", "item": "口红", "result": "恭喜中奖",
                                                      "opened_at": "2026-01-01 12:00"})
    assert template.template_id == "tpl_won" and page == "pages/gift/result?order_id=abc"
    assert data == {"thing1": {"value": "口红"}, "phrase2": {"value": "恭喜中奖"},
                    "time3": {"value": "2026-01-01 12:00"}}


@pytest.mark.parametrize("text, complaint", [
    ("{", "not valid JSON"),
    ('{"templates": {"gift_party": {}}}', "unknown kind"),
    ('{"templates": {"gift_won": {"data": {"thing1": "{item}"}}}}', "template_id is required"),
    ('{"templates": {"gift_won": {"template_id": "t", "data": {"thingy1": "{item}"}}}}', "unknown field type"),
    ('{"templates": {"gift_won": {"template_id": "t", "data": {"thing1": "{secret}"}}}}', "unknown value"),
    ('{"miniprogram_state": "prod"}', "miniprogram_state"),
])
def test_a_broken_configuration_says_what_is_wrong(text, complaint):
    with pytest.raises(ConfigError, match=complaint):
        parse_config(text)


def test_no_configuration_sends_nothing():
    assert parse_config("").templates == {}
