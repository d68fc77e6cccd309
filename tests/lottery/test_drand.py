"""drand quicknet rounds as recorded from drand's public relays, checked against the chain's
public key as pinned in lottery/drand.py: real signatures from the League of Entropy, not ours."""
import pytest

from lottery import drand

# Signatures of quicknet rounds as drand's relays served them (`/public/<round>`), recorded in
# public test fixtures of drand's users (ChainSafe's forest: rounds 2, 3; python-drand-verify:
# round 657413 with its randomness).
RECORDED = {
    2: "b6b6a585449b66eb12e875b64fcbab3799861a00e4dbf092d99e969a5eac57dd3f798acf61e705fe4f093db926626807",
    3: "b3fab6df720b68cc47175f2c777e86d84187caab5770906f515ff1099cb01e4deaa027075d860823e49477b93c72bd64",
    657413: "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b",
}
RANDOMNESS_657413 = "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587"


@pytest.mark.parametrize("round_", sorted(RECORDED))
def test_a_recorded_quicknet_round_verifies_against_the_pinned_key(round_):
    assert drand.verify(drand.QUICKNET, round_, RECORDED[round_])


def test_the_randomness_of_a_round_is_sha256_of_its_signature():
    assert drand.randomness(RECORDED[657413]) == RANDOMNESS_657413


@pytest.mark.parametrize("round_, other", [(2, 3), (3, 2), (657413, 657414), (3, 657413)])
def test_a_signature_for_one_round_is_refused_for_another(round_, other):
    assert not drand.verify(drand.QUICKNET, other, RECORDED[round_])


@pytest.mark.parametrize("bit", [0, 7, 200, 383])
def test_a_signature_with_one_flipped_bit_is_refused(bit):
    signature = bytearray(bytes.fromhex(RECORDED[3]))
    signature[bit // 8] ^= 1 << (bit % 8)
    assert not drand.verify(drand.QUICKNET, 3, signature.hex())


@pytest.mark.parametrize("signature", ["", "00" * 48, "c0" + "00" * 47, RECORDED[3][:-2], RECORDED[3].upper(),
                                       None, 42])
def test_what_is_not_a_signature_is_refused(signature):
    assert not drand.verify(drand.QUICKNET, 3, signature)


def test_a_round_is_refused_against_another_chains_key():
    other = drand.Chain(drand.QUICKNET.chain_hash, "a" + drand.QUICKNET.public_key[1:], 0, 3)
    assert not drand.verify(other, 3, RECORDED[3])


def test_the_round_of_a_moment_is_the_first_whose_time_is_after_it():
    quicknet = drand.QUICKNET
    assert quicknet.round_time(1) == 1692803367 and quicknet.round_time(3) == 1692803373
    assert quicknet.first_round_after(1692803367) == 2  # round 1's own time is not after it
    assert quicknet.first_round_after(1692803366.999) == 1
    assert quicknet.first_round_after(1692803369.5) == 2 and quicknet.first_round_after(1692803370) == 3
    assert quicknet.first_round_after(1692803367 + 3 * 30662980) == 30662982
