"""The fast path's hand-made netlink messages decode as intended (no root)."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from ipaddress import IPv6Address, IPv6Network

import pytest
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from pmip6.dataplane import fastpath
from pmip6.dataplane.kernel import PROTO
from pmip6.dataplane.seg6 import seg6_encap  # also teaches pyroute2 encap.red


def decode(data: bytes) -> rtmsg:
    msg = rtmsg(data)
    msg.decode()
    return msg


def test_seg6_add_is_encap_red_with_one_segment() -> None:
    target = IPv6Network("2001:db8:1:2::/64")
    msg = decode(fastpath.seg6_add(target, IPv6Address("fd00::11"), 7, 254, PROTO))
    assert msg["header"]["type"] == fastpath.RTM_NEWROUTE
    assert msg["header"]["length"] == len(
        fastpath.seg6_add(target, IPv6Address("fd00::11"), 7, 254, PROTO)
    )
    assert (msg["family"], msg["dst_len"], msg["proto"]) == (10, 64, PROTO)
    assert msg.get_attr("RTA_DST") == "2001:db8:1:2::"
    assert msg.get_attr("RTA_OIF") == 7
    assert msg.get_attr("RTA_ENCAP_TYPE") == fastpath.LWTUNNEL_ENCAP_SEG6
    srh = msg.get_attr("RTA_ENCAP").get_attr("SEG6_IPTUNNEL_SRH")
    assert srh["encapmode"] == 3
    assert srh["mode"] == "encap.red"
    assert srh["segs"] == ["fd00::11"]
    assert (srh["segments_left"], srh["first_segment"], srh["hdrlen"]) == (0, 0, 2)


def test_big_table_ids_use_rta_table() -> None:
    target = IPv6Network("::/0")
    msg = decode(fastpath.seg6_add(target, IPv6Address("fd00::1"), 1, 0x9B01, PROTO))
    assert msg["table"] == 252
    assert msg.get_attr("RTA_TABLE") == 0x9B01


def test_delete_names_protocol_and_table() -> None:
    msg = decode(fastpath.route_del(IPv6Network("2001:db8::10/128"), 254, PROTO))
    assert msg["header"]["type"] == fastpath.RTM_DELROUTE
    assert msg["header"]["flags"] & fastpath.NLM_F_ACK
    assert msg["proto"] == PROTO
    assert msg.get_attr("RTA_DST") == "2001:db8::10"


def test_pyroute2_mode_table_knows_encap_red() -> None:
    assert seg6_encap(IPv6Address("fd00::11"))["mode"] == "encap.red"
    srh = rtmsg.seg6_encap_info.ipv6_sr_hdr
    assert srh.encapmodes["encap.red"] == 3
    assert srh.r_encapmodes[3] == "encap.red"


def test_segment_of_dumped_encap() -> None:
    encap = fastpath.seg6_encap(IPv6Address("fd00::12"))
    # skip RTA_ENCAP_TYPE (8 octets) and the RTA_ENCAP header (4 octets)
    assert fastpath.seg6_segment(encap[12:]) == IPv6Address("fd00::12")
    assert fastpath.seg6_segment(b"") is None


def test_batches_resend_enomem_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[list[bytes]] = []

    def run(self: fastpath.Batcher, msgs: Sequence[bytes], batch: int = 0) -> list[int]:
        sent.append(list(msgs))
        # the first attempt at each odd message runs out of memory
        return [
            errno.ENOMEM if len(sent) == 1 and i % 2 else 0 for i in range(len(msgs))
        ]

    monkeypatch.setattr(fastpath.Batcher, "run", run)
    with fastpath.Batcher() as b:
        msgs = [bytes([i]) for i in range(6)]
        assert b.run_retrying(msgs, delay=0.0) == [0] * 6
        assert b.enomem_retries == 3
    assert sent[1] == [msgs[1], msgs[3], msgs[5]]
