"""The gift routes: the seed mini-program's (handlers/legacy.py, the getUserInfo of
handlers/profile.py) and the v1 API's (handlers/gifts.py, draws.py, profile.py)."""
from handlers.openapi.blocks import (BOOLEAN, COUNT, answer, array, HEX64, IDENTIFIER, ORDER_ID, STRING, TEXT_LIST,
                                     TIME, integer, legacy, nullable, obj, ref, request, text, trimmed, v1)
from lottery.gifts import MAX_TIER, MAX_TIER_NAME, METHODS, STATES
from lottery.profiles import MAX_NICKNAME

TIER = obj({"rank": integer(1, MAX_TIER), "name": text(1, MAX_TIER_NAME)})
ITEM = obj({"name": STRING, "image": STRING, "tier": TIER}, optional=("tier",))  # tier: tiered gifts only
ENTRY = obj({"pass_phrase": BOOLEAN, "group_only": BOOLEAN, "group_bound": BOOLEAN})
PERSON = obj({"name": STRING, "avatar": STRING})
GIFT_STATUS = {"enum": ["open", "ready", "drawing", "finished"]}

SCHEMAS: dict[str, dict] = {
    "Item": ITEM,
    "Gift": obj({
        "order_id": IDENTIFIER, "sender": PERSON, "method": {"enum": list(METHODS)},
        "open_number": nullable(COUNT), "open_at": nullable(TIME), "deadline_at": nullable(TIME),
        "wish": STRING, "status": GIFT_STATUS,
        "joined_count": COUNT, "items_total": COUNT, "items_left": COUNT,
        "items": {"type": "array", "items": ref("Item")}, "seed_commitment": HEX64,
        "created_at": TIME, "opened_at": nullable(TIME), "version": COUNT,
        # What a joiner must bring (the phrase itself and the group are never shown).
        "entry": ref("Entry"),
        "freeze": nullable(ref("Freeze")),
    }),
    "Entry": ENTRY,
    # A drawing gift's frozen participant list, published before its beacon round exists.
    "Freeze": obj({"participants_hash": HEX64, "participant_count": COUNT, "frozen_at": TIME,
                   "beacon_round": COUNT}, optional=("beacon_round",)),
    # The drand round a version-2 draw mixed in (`status` verified), or the operator's policy that
    # let it go ahead without it (`status` unavailable).
    "Beacon": obj({"chain_hash": HEX64, "round": COUNT, "status": {"enum": ["verified", "unavailable"]},
                   "signature": STRING, "randomness": HEX64, "policy": STRING},
                  optional=("signature", "randomness", "policy")),
    # The drand chain this server's draws use (GET /api/v1/beacon).
    "BeaconChain": obj({"chain_hash": HEX64, "public_key": STRING, "genesis": {"type": "number"},
                        "period": {"type": "number"}, "scheme": STRING}),
    "Me": obj({"state": {"enum": list(STATES)}, "item": ref("Item"), "joined_at": TIME, "participant": STRING,
               "receipt": ref("Receipt")},
              optional=("item", "joined_at", "participant", "receipt")),
    # A drawn gift's join, signed by the server's receipt key (GET /api/v1/receipt-key).
    "Receipt": obj({"gift": IDENTIFIER, "participant": STRING, "sequence": COUNT, "signature": STRING}),
    "ReceiptKey": obj({"algorithm": {"enum": ["ed25519"]}, "public_key": STRING, "message": STRING}),
    "GiftAndMe": obj({"gift": ref("Gift"), "me": ref("Me")}),
    "Proof": obj({
        "algorithm": STRING, "version": COUNT, "order_id": IDENTIFIER, "seed_commitment": HEX64,
        "seed": HEX64, "participants": {"type": "array", "items": STRING}, "participants_hash": STRING,
        "items": {"type": "array", "items": STRING}, "items_hash": STRING,
        "winners": {"type": "array", "items": obj({"participant": STRING, "item_index": COUNT})},
        "opened_at": nullable(TIME), "frozen_at": TIME, "beacon": ref("Beacon"),
        "sequences": {"type": "array", "items": COUNT},
        # A tiered gift's tiers, [rank, name] per item, covered by items_hash; absent without tiers.
        "tiers": array(array({"anyOf": [integer(1, MAX_TIER), STRING]}, minItems=2, maxItems=2)),
    }, optional=("frozen_at", "beacon", "sequences", "tiers")),
    "LegacyGift": obj({
        "member_data": PERSON,
        "methons_data": obj({"get_method": {"enum": ["直接送礼", "满人开奖", "定时开奖"]},
                             "open_number": COUNT, "opentime": STRING}),
        "order_data": obj({"order_id": IDENTIFIER, "memo": STRING, "items_total": COUNT, "items_left": COUNT,
                           "joined_count": COUNT, "status": STRING}),
        "item": ref("Item"),
        "entry": ref("Entry"),  # checkHasJoin, for a gift with entry conditions only
    }, optional=("item", "entry")),
    "Profile": obj({"nickname": STRING, "avatar_url": STRING}),
}

# What a new gift (an order, the admin API) may set: its items' prize tiers, its entry conditions.
TIER_FIELDS = {"tier": {**integer(1, MAX_TIER), "description": "the prize tier (1: 一等奖, drawn first); every "
                                                                "item or none"},
               "tier_name": {"type": "string", "maxLength": MAX_TIER_NAME,
                             "description": "the tier's name (default 一等奖, 二等奖, ...)"}}
ENTRY_FIELDS = {"pass_phrase": {"type": "string", "maxLength": 64,
                                "description": "joiners must give this phrase (1 to 20 characters once normalised)"},
                "group_only": {**BOOLEAN, "description": "only members who open it from the WeChat group the "
                                                         "sender shares it in (POST .../group binds it)"}}
GROUP_DATA = {"iv": {"type": "string", "maxLength": 64, "description": "wx.getGroupEnterInfo's iv"},
              "encryptedData": {"type": "string", "maxLength": 8192,
                                "description": "wx.getGroupEnterInfo's encryptedData"}}
JOIN_FIELDS = {"form_id": {"type": "string", "maxLength": 128}, "subscribed": TEXT_LIST,
               "pass_phrase": {"type": "string", "maxLength": 64,
                               "description": "a pass-phrase gift's phrase: compared after NFKC, case folding and "
                                              "trimming"},
               **GROUP_DATA}
JOIN_REFUSALS = (
    "refused: the v1 codes of every join (own_gift, already_joined, full, closed, ...), and for entry conditions: "
    "400 pass_phrase_required, group_data_required, group_data_stale (wx.getGroupEnterInfo's data over an hour "
    "old), decryption_failed, wrong_appid; 401 no_session_key (no wx.login session to decrypt with); 403 "
    "wrong_pass_phrase, not_in_group (another group, or opened outside a group), risk_refused (WeChat's user risk "
    "rank, when checked); 409 group_not_bound (the sender has not opened it in the group yet); 429 "
    "too_many_guesses (10 wrong phrases in 10 minutes: refused for 30 minutes)")

LEGACY_PATHS = {
    "/api/member/code/login": {"post": legacy(
        "Sign in with the code from wx.login", request({"code": text(1, 128)}, ("code",)),
        obj({"login_key": STRING}))},
    "/api/sharagift/checkHasJoin": {"post": legacy(
        "Whether the member may join (suc: opened; error: cannot; success: may)",
        request({"login_key": STRING, "order_id": IDENTIFIER}, ("login_key", "order_id")),
        ref("LegacyGift"))},
    "/api/sharagift/JoinGift": {"post": legacy(
        "Join (success: joined and waiting; suc: a direct gift's item is yours)",
        request({"login_key": STRING, "order_id": IDENTIFIER, **JOIN_FIELDS}, ("login_key", "order_id")),
        ref("LegacyGift"))},
    "/api/member/code/getUserInfo": {"post": legacy(
        "Store the profile from wx.getUserInfo's encrypted data",
        request({"login_key": STRING, "iv": STRING, "encryptedData": STRING}, ("login_key", "iv", "encryptedData")),
        PERSON)},
}

V1_PATHS = {
    "/api/v1/gifts/{order_id}": {"get": v1("The gift and the member's state in it", ref("GiftAndMe"),
                                           params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/join": {"post": v1(
        "Join", obj({"me": ref("Me"), "gift": obj({"order_id": IDENTIFIER, "version": COUNT, "joined_count": COUNT,
                                                    "status": STRING})}),
        body=request(JOIN_FIELDS), params=[ORDER_ID],
        more={"4XX": answer(JOIN_REFUSALS, ref("Error")),
              503: answer("the database is unreachable or hangs: database_unavailable (nothing was written), or "
                          "join_outcome_unknown (the join's write was sent and no answer came: it may have taken "
                          "effect; trying again is safe and answers the join or already_joined); Retry-After says "
                          "when", ref("Error"))})},
    "/api/v1/gifts/{order_id}/group": {"post": v1(
        "The sender binds a group-only gift to the group they shared it in (once)", obj({"entry": ref("Entry")}),
        body=request(GROUP_DATA, ("iv", "encryptedData")), body_required=True, params=[ORDER_ID],
        more={"4XX": answer("refused: the data's errors as on a join (group_data_stale, decryption_failed, "
                            "wrong_appid, no_session_key, not_in_group), invalid_input (not the sender, or not a "
                            "group-only gift), 409 group_already_bound (bound to another group)", ref("Error"))})},
    "/api/v1/gifts/{order_id}/open": {"post": v1("The sender opens a full or timed gift now", ref("GiftAndMe"),
                                                 params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/proof": {"get": v1("The fairness proof of an opened gift", ref("Proof"),
                                                 auth=None, params=[ORDER_ID])},
    "/api/v1/beacon": {"get": v1("The drand chain (pinned: quicknet) whose rounds this server's draws mix in",
                                 ref("BeaconChain"), auth=None)},
    "/api/v1/receipt-key": {"get": v1("The Ed25519 public key that checks join receipts", ref("ReceiptKey"),
                                      auth=None)},
    "/api/v1/me/profile": {"post": v1(
        "Set the member's nickname and/or avatar", ref("Profile"),
        body=request({"nickname": trimmed(MAX_NICKNAME), "avatar_url": STRING}, blank=False),
        more={"4XX": answer("refused: invalid_input, missing_params, content_risky (WeChat's content check found "
                            "the nickname risky); a nickname for review, or written while WeChat's check was "
                            "down, is accepted and shown to others only once it passes", ref("Error")),
              502: answer("WeChat's content check is down and --content_unreachable=refuse (upstream_error)",
                          ref("Error"))})},
}

PATHS = {**LEGACY_PATHS, **V1_PATHS}
