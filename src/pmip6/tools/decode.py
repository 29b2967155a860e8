"""``pmip6 decode FILE``: print the Mobility Header messages in a capture.

Every frame of a pcap or pcapng file is walked to its Mobility Header
(``pmip6.wire.pcap``); each message is printed field by field with its packet
number and addresses, a malformed one with the reason, and other packets are
only counted. With ``--json`` the same comes out as one JSON document.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv6Address
from typing import Any, BinaryIO, Literal

import dpkt

from pmip6.wire.checksum import ipv6_checksum, ipv6_checksum_ok
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    MH_PROTO,
    BindingAcknowledgement,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    Message,
    MobileNodeIdentifier,
    Option,
    RevocationStatus,
    RevocationTrigger,
    Status,
    UnknownMessage,
    decode_mh,
)
from pmip6.wire.pcap import FrameError, NotMobility, find_mobility_header
from pmip6.wire.profile import PROFILES, Profile, profile_named

HELP = "print the Mobility Header messages in a pcap"

_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

_MESSAGE_NAMES = {
    "BindingUpdate": "Binding Update",
    "BindingAcknowledgement": "Binding Acknowledgement",
    "BindingError": "Binding Error",
    "Heartbeat": "Heartbeat",
    "BindingRevocationIndication": "Binding Revocation Indication",
    "BindingRevocationAcknowledgement": "Binding Revocation Acknowledgement",
}
# MH types the codec keeps opaque, named for the reader (IANA registry)
_OTHER_MH_TYPES = {
    0: "Binding Refresh Request",
    1: "Home Test Init",
    2: "Care-of Test Init",
    3: "Home Test",
    4: "Care-of Test",
    8: "Fast Binding Update",
    9: "Fast Binding Acknowledgement",
    10: "Fast Neighbor Advertisement",
    11: "Experimental",
    12: "Home Agent Switch",
    14: "Handover Initiate",
    15: "Handover Acknowledge",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a pcap or pcapng capture")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead"
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="draft-00",
        help="code points of the seed's options (default: draft-00)",
    )


def run(args: argparse.Namespace) -> int:
    profile = profile_named(args.profile)
    try:
        handle = open(args.file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        print(f"pmip6 decode: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    with handle:
        if not handle.seekable():
            # a pipe (tcpdump -w - | pmip6 decode /dev/stdin): read it whole,
            # the readers look back at headers
            handle = io.BytesIO(handle.read())  # type: ignore[assignment]
        try:
            reader = _open_capture(handle)
        except (ValueError, dpkt.Error, EOFError, OSError) as exc:
            print(
                f"pmip6 decode: {args.file} is not a pcap or pcapng file ({exc})",
                file=sys.stderr,
            )
            return 1
        report = decode_capture(reader, profile)
    try:
        if args.json:
            json.dump(report, sys.stdout, indent=2)
            print()
        else:
            for entry in report["messages"]:
                print(format_entry(entry))
            print(format_summary(report["summary"]))
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader (head, less) went away: stop quietly, as text tools do
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    return 0


# --- reading ------------------------------------------------------------------------


class _Capture:
    """Frames of an opened capture with its link type.

    For a classic pcap file ``handle`` and ``byteorder`` let the last record be
    checked: dpkt hands out a record cut off by the end of the file as if it
    were a short frame, which would then read as a frame cut short on the wire.
    """

    def __init__(
        self,
        reader: Any,
        handle: BinaryIO | None = None,
        byteorder: Literal["little", "big"] = "little",
    ) -> None:
        self.reader = reader
        self.linktype = int(reader.datalink())
        self.error: str | None = None
        self._handle = handle
        self._byteorder = byteorder

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        frames = iter(self.reader)
        try:
            while True:
                start = self._handle.tell() if self._handle is not None else 0
                try:
                    timestamp, frame = next(frames)
                except StopIteration:
                    return
                wanted = self._incl_len(start)
                if wanted is not None and len(frame) < wanted:
                    self.error = (
                        f"capture ends early: the last record is cut off "
                        f"({len(frame)} of {wanted} octets)"
                    )
                    return
                yield float(timestamp), bytes(frame)
        except (ValueError, dpkt.Error, EOFError, OSError) as exc:
            # a capture cut off mid-record still has its first frames to show
            self.error = f"capture ends early: {exc or type(exc).__name__}"

    def _incl_len(self, start: int) -> int | None:
        """The incl_len of the classic pcap record header at ``start``."""
        if self._handle is None:
            return None
        end = self._handle.tell()
        self._handle.seek(start + 8)  # after ts_sec and ts_usec
        field = self._handle.read(4)
        self._handle.seek(end)
        return int.from_bytes(field, self._byteorder) if len(field) == 4 else None


def _open_capture(handle: BinaryIO) -> _Capture:
    magic = handle.read(4)
    handle.seek(0)
    if magic == _PCAPNG_MAGIC:
        return _Capture(dpkt.pcapng.Reader(handle))
    reader = dpkt.pcap.Reader(handle)
    # the magic number reads a1b2c3d4 (or a1b23c4d, nanoseconds) in the
    # writer's byte order
    little = magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    return _Capture(reader, handle, "little" if little else "big")


def decode_capture(capture: _Capture, profile: Profile) -> dict[str, Any]:
    """Every Mobility Header message of ``capture`` as dicts, and a summary."""
    messages: list[dict[str, Any]] = []
    packets = skipped = malformed = 0
    for number, (timestamp, frame) in enumerate(capture, 1):
        packets += 1
        try:
            found = find_mobility_header(capture.linktype, frame)
        except NotMobility:
            skipped += 1
            continue
        except FrameError as exc:
            # an IPv6 frame we could not follow; count it as other traffic
            # unless it may hold a Mobility Header we cannot see
            skipped += 1
            messages.append(
                {"packet": number, "time": timestamp, "frame_error": str(exc)}
            )
            continue
        entry: dict[str, Any] = {
            "packet": number,
            "time": timestamp,
            "src": str(found.src),
            "dst": str(found.dst),
        }
        try:
            message = decode_mh(found.mh, profile)
        except Malformed as exc:
            malformed += 1
            entry["malformed"] = str(exc)
            entry["mh"] = found.mh.hex()
            messages.append(entry)
            continue
        mh = found.mh
        entry["checksum"] = f"0x{mh[4] << 8 | mh[5]:04x}"
        entry["checksum_ok"] = ipv6_checksum_ok(
            found.checksum_src, found.checksum_dst, MH_PROTO, mh
        )
        if not entry["checksum_ok"]:
            expected = ipv6_checksum(
                found.checksum_src,
                found.checksum_dst,
                MH_PROTO,
                mh[:4] + b"\0\0" + mh[6:],
            )
            entry["checksum_expected"] = f"0x{expected:04x}"
        entry.update(message_dict(message))
        messages.append(entry)
    summary: dict[str, Any] = {
        "packets": packets,
        "mobility": len([m for m in messages if "frame_error" not in m]),
        "malformed": malformed,
        "other": skipped,
    }
    if capture.error:
        summary["error"] = capture.error
    return {"messages": messages, "summary": summary}


# --- presenting -----------------------------------------------------------------------


def _value(value: Any) -> Any:
    if isinstance(value, enum.Flag):
        return _flag_names(value)
    if isinstance(value, IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _flag_names(flags: enum.Flag) -> str:
    names = [
        member.name
        for member in type(flags)
        if member.name and member.value & flags.value == member.value
    ]
    known = 0
    for member in type(flags):
        known |= member.value
    rest = flags.value & ~known
    if rest:
        names.append(f"0x{rest:x}")
    return "|".join(names) or "-"


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        f.name: _value(getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if f.name not in skip
    }


def option_dict(option: Option) -> dict[str, Any]:
    """One option as a flat dict: its class name, then its fields."""
    result: dict[str, Any] = {"option": type(option).__name__}
    result.update(_fields(option))
    if isinstance(option, MobileNodeIdentifier) and option.subtype == 1:
        result["nai"] = option.nai
    return result


def _enum_name(kind: type[enum.IntEnum], value: int) -> str | None:
    try:
        return kind(value).name
    except ValueError:
        return None


def message_dict(message: Message) -> dict[str, Any]:
    """One message as a dict: its name, its fields, its options."""
    name = type(message).__name__
    if isinstance(message, UnknownMessage):
        label = _OTHER_MH_TYPES.get(message.mh_type, f"MH type {message.mh_type}")
    else:
        label = _MESSAGE_NAMES[name]
    if isinstance(message, BindingUpdate | BindingAcknowledgement) and (
        message.flags.value & (0x0200 if isinstance(message, BindingUpdate) else 0x20)
    ):
        label = "Proxy " + label
    result: dict[str, Any] = {"message": name, "name": label}
    result.update(_fields(message, skip=("options",)))

    # names of known codes beside their numbers
    names: dict[str, str | None] = {}
    if isinstance(message, BindingAcknowledgement):
        names["status_name"] = _enum_name(Status, message.status)
    elif isinstance(message, BindingRevocationIndication):
        names["revocation_trigger_name"] = _enum_name(
            RevocationTrigger, message.revocation_trigger
        )
    elif isinstance(message, BindingRevocationAcknowledgement):
        names["status_name"] = _enum_name(RevocationStatus, message.status)
    result.update({k: v for k, v in names.items() if v is not None})
    if isinstance(message, BindingUpdate | BindingAcknowledgement):
        result["lifetime_seconds"] = message.lifetime * 4
    if not isinstance(message, UnknownMessage):
        result["options"] = [option_dict(o) for o in message.options]
    return result


_HEAD_KEYS = ("packet", "time", "src", "dst", "message", "name", "options")


def format_entry(entry: dict[str, Any]) -> str:
    """One capture entry as indented text, a field a line."""
    number = entry["packet"]
    if "frame_error" in entry:
        return f"#{number}  frame not followed: {entry['frame_error']}"
    head = f"#{number}  {entry['src']} -> {entry['dst']}"
    if "malformed" in entry:
        return (
            f"{head}  MALFORMED: {entry['malformed']}\n    {'octets':<20} {entry['mh']}"
        )
    lines = [f"{head}  {entry['name']}"]
    for key, value in entry.items():
        if key in _HEAD_KEYS or key.endswith("_name") or key.startswith("checksum"):
            continue
        text = str(value)
        if f"{key}_name" in entry:
            text += f" ({entry[key + '_name']})"
        if key == "lifetime":
            continue
        if key == "lifetime_seconds":
            key, text = "lifetime", f"{entry['lifetime']} ({value} s)"
        lines.append(f"    {key:<20} {text}")
    verdict = (
        "ok"
        if entry["checksum_ok"]
        else f"WRONG, expected {entry['checksum_expected']}"
    )
    lines.append(f"    {'checksum':<20} {entry['checksum']} ({verdict})")
    for option in entry.get("options", ()):
        lines.append(f"    option {_describe_option(option)}")
    return "\n".join(lines)


def _describe_option(option: dict[str, Any]) -> str:
    kind = str(option["option"])
    rest = {k: v for k, v in option.items() if k != "option"}
    if kind == "MobileNodeIdentifier" and "nai" in rest:
        return f"{kind}: NAI {rest['nai']!r}"
    if kind in ("HomeNetworkPrefix", "AssignedHomeAddress"):
        address = rest.get("home_network_prefix") or rest.get("home_address")
        return f"{kind}: {address}/{rest['prefix_length']}"
    if kind == "Timestamp":
        # RFC 5213 8.8: 48-bit seconds since 1970, 16-bit 1/65536 fractions
        value = int(rest["timestamp"])
        seconds = (value >> 16) + (value & 0xFFFF) / 65536
        try:
            when = datetime.fromtimestamp(seconds, UTC).isoformat(
                timespec="milliseconds"
            )
        except (OverflowError, ValueError, OSError):
            when = "out of range"
        return f"{kind}: {when} (0x{value:016x})"
    if kind == "UnknownOption":
        return f"option type {rest['option_type']}: {rest['data'] or '(empty)'}"
    if not rest:
        return kind
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in rest.items())


def format_summary(summary: dict[str, Any]) -> str:
    text = (
        f"{summary['packets']} packets: {summary['mobility']} Mobility Header "
        f"messages ({summary['malformed']} malformed), {summary['other']} other "
        "packets skipped"
    )
    if "error" in summary:
        text += f"; {summary['error']}"
    return text
