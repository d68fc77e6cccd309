"""Images come only from this server's /static/ and the allowed image hosts (WeChat's avatar and
image CDNs by default), so no page makes its viewers' browsers call another host; the pages'
Content-Security-Policy names the same hosts."""
import pytest

from lottery.images import ImageSources
from fakes.wechat import session_key_for
from tests.handlers.test_headers import policy
from tests.handlers.test_profile_api import IV
from tests.wechat.support import encrypt_user_data, user_info

ALLOWED = ["/static/img/icon.svg", "https://thirdwx.qlogo.cn/mmopen/vi_32/a/132",
           "https://wx.qlogo.cn/mmopen/a.png", "https://mmbiz.qpic.cn/mmbiz_png/x/0?wx_fmt=png"]
REFUSED = ["//evil.example/x.png", "https://evil.example/x.png", "http://thirdwx.qlogo.cn/a.png",
           "https://thirdwx.qlogo.cn.evil.example/a.png", "https://thirdwx.qlogo.cn@evil.example/a.png",
           "https://user:pw@thirdwx.qlogo.cn/a.png", "https://thirdwx.qlogo.cn:8443/a.png",
           "/static/../api/site", "/api/site", "/static//evil.example/x.png", "data:image/png;base64,AAAA",
           "javascript:alert(1)", "https://thirdwx.qlogo.cn/a.png\" onerror=\"x", "https://thirdwx.qlogo.cn\\@evil.example/",
           "wxfile://tmp_abc.png", "https://thirdwx.qlogo.cn/" + "x" * 600]


async def create(api, image: str) -> tuple[int, dict]:
    return await api.request("POST", "/api/admin/gifts", {"sender_openid": "o_s", "method": "direct",
                                                          "items": [{"name": "茶", "image": image}]},
                             token=api.admin_token)


@pytest.mark.gen_test
async def test_an_item_image_must_be_ours_or_on_an_allowed_host(api, db):
    for image in ALLOWED:
        status, answer = await create(api, image)
        assert status == 201, (image, answer)
    for image in REFUSED:
        status, answer = await create(api, image)
        assert status == 400 and answer["error"]["code"] == "invalid_input", image
    assert await db.gifts.count_documents({}) == len(ALLOWED)


@pytest.mark.gen_test
async def test_a_members_avatar_must_be_ours_or_on_an_allowed_host(api):
    key = await api.login("avatar")
    for url in ALLOWED:
        status, answer = await api.request("POST", "/api/v1/me/profile", {"avatar_url": url}, token=key)
        assert status == 200 and answer["avatar_url"] == url
    for url in REFUSED:
        status, answer = await api.request("POST", "/api/v1/me/profile", {"avatar_url": url}, token=key)
        assert status == 400 and answer["error"]["code"] == "invalid_input", url


@pytest.mark.gen_test
async def test_wechat_avatars_from_get_user_info_are_kept_and_others_dropped(api):
    for avatar, kept in (("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", True),
                         ("https://evil.example/a.png", False)):
        code = "wx" + str(kept)
        key = await api.login(code)
        encrypted = encrypt_user_data(session_key_for(code), IV, user_info(nickName="小王", avatarUrl=avatar))
        answer = await api.legacy("/api/member/code/getUserInfo", {"login_key": key, "iv": IV, "encryptedData": encrypted})
        assert answer["code"] == "success" and answer["data"] == {"name": "小王", "avatar": avatar if kept else ""}


@pytest.mark.gen_test
async def test_pages_may_load_images_only_from_the_allowed_hosts(http_client, base_url):
    response = await http_client.fetch(base_url + "/gift/abc123")
    images = policy(response.headers["Content-Security-Policy"])["img-src"]
    assert images == {"'self'", "data:", "https://thirdwx.qlogo.cn", "https://wx.qlogo.cn", "https://mmbiz.qpic.cn"}


@pytest.fixture
def app(request, build_app):
    hosts = getattr(request, "param", None)
    return build_app(images=ImageSources(hosts)) if hosts else build_app()


@pytest.mark.parametrize("app", [("img.example.com",)], indirect=True)
@pytest.mark.gen_test
async def test_the_image_hosts_are_configurable(api, http_client, base_url):
    assert (await create(api, "https://img.example.com/a.png"))[0] == 201
    assert (await create(api, "https://thirdwx.qlogo.cn/a.png"))[0] == 400
    response = await http_client.fetch(base_url + "/")
    assert policy(response.headers["Content-Security-Policy"])["img-src"] == {
        "'self'", "data:", "https://img.example.com"}
