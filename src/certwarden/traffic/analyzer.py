"""Read a capture and yield its TLS sessions: the flow table and the packet loop (hot path).

Memory is bounded by the flows open at once: a flow is finished and dropped as soon as both
directions have nothing more to tell (encrypted, or not TLS), on RST or both FINs, or after
``IDLE_TIMEOUT`` capture seconds of silence; only a small marker remains for a finished TCP
flow until it closes, so that its later packets cost one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from certwarden.traffic.capture import LINK_SECRETS, CaptureError, Frame, read_frames
from certwarden.traffic.dtls import looks_like_dtls
from certwarden.traffic.keylog import KeyLog, parse_keylog
from certwarden.traffic.packet import SUPPORTED_LINKTYPES, TCP, decode
from certwarden.traffic.quic import looks_like_quic_initial
from certwarden.traffic.reassembly import FIN, RST, SYN
from certwarden.traffic.session import Flow, TlsSession

IDLE_TIMEOUT = 300.0  # capture seconds; long enough for a slow handshake, short for memory
_SWEEP_EVERY = 1 << 16  # packets between idle sweeps
_ACK = 0x10


@dataclass(slots=True, kw_only=True)
class CaptureStats:
    """What reading one capture did; ``error`` is the reason reading stopped early, if any."""

    path: str
    frames: int = 0
    bytes: int = 0
    undecoded: int = 0  # frames that were not IPv4/IPv6 TCP/UDP (ARP, fragments, other links)
    sessions: int = 0
    certificates: int = 0
    max_open_flows: int = 0
    unsupported_linktypes: set[int] = field(default_factory=set)
    error: str | None = None


class _Closed:
    """A finished TCP flow's marker: later packets are skipped until FIN/RST or a new SYN."""

    __slots__ = ("fins",)

    def __init__(self) -> None:
        self.fins = 0


def analyze(path: str, *, ja4plus: bool = True, stats: CaptureStats | None = None,
            label: str | None = None) -> Iterator[TlsSession]:
    """Yield every TLS/DTLS session of the capture at ``path`` in the order each ends.

    A corrupt file ends early: sessions found so far are still yielded, then ``stats.error``
    holds the reason (the caller decides whether that is an error or a counted skip).
    """
    st = stats if stats is not None else CaptureStats(path=path)
    name = label or path
    flows: dict[tuple[int, bytes, int, bytes, int], Flow | _Closed] = {}
    keylog: KeyLog = {}  # filled by the capture's own Decryption Secrets Blocks, if any

    def finish(key: tuple[int, bytes, int, bytes, int], flow: Flow,
               closed: bool) -> TlsSession | None:
        flow.end()
        if closed or flow.halves is None:
            del flows[key]
        else:
            flows[key] = _Closed()
        if flow.has_tls():
            s = flow.session(ja4plus=ja4plus)
            st.sessions += 1
            st.certificates += len(s.server_chain) + len(s.client_chain)
            return s
        return None

    frames: Generator[Frame, None, None] = read_frames(path)
    n = nbytes = 0
    try:
        for ts, linktype, data in frames:
            n += 1
            nbytes += len(data)
            pkt = decode(linktype, data)
            if pkt is None:
                if linktype == LINK_SECRETS:
                    parse_keylog(data, keylog)
                    continue
                st.undecoded += 1
                if linktype not in SUPPORTED_LINKTYPES:
                    st.unsupported_linktypes.add(linktype)
                continue
            proto, src, dst, sport, dport, seq, flags, payload = pkt
            key = (proto, src, sport, dst, dport)
            side = 0
            flow = flows.get(key)
            if flow is None:
                rkey = (proto, dst, dport, src, sport)
                flow = flows.get(rkey)
                if flow is not None:
                    key, side = rkey, 1
            if type(flow) is _Closed:
                if proto == TCP:
                    if flags & SYN and not flags & _ACK:
                        del flows[key]  # the port pair is reused by a new connection
                        flow = None
                    elif flags & RST:
                        del flows[key]
                        continue
                    elif flags & FIN:
                        flow.fins += 1
                        if flow.fins >= 2:
                            del flows[key]
                        continue
                    else:
                        continue
                else:
                    continue
            elif (type(flow) is Flow and proto == TCP and flags & SYN and not flags & _ACK
                  and side == 0 and flow.halves is not None
                  and flow.halves[0].next_seq is not None
                  and (seq + 1) & 0xFFFFFFFF != flow.halves[0].next_seq):
                s = finish(key, flow, True)  # a new connection reuses the port pair
                flow = None
                if s is not None:
                    yield s
            if flow is None:
                if proto == TCP:
                    flow = Flow(name, "tcp", (src, sport), (dst, dport), ts, keylog=keylog)
                elif looks_like_dtls(payload):
                    flow = Flow(name, "udp", (src, sport), (dst, dport), ts)
                elif looks_like_quic_initial(payload):
                    flow = Flow(name, "quic", (src, sport), (dst, dport), ts, quic=True)
                else:
                    continue
                key, side = (proto, src, sport, dst, dport), 0
                flows[key] = flow
                if len(flows) > st.max_open_flows:
                    st.max_open_flows = len(flows)
            assert isinstance(flow, Flow)
            flow.last = ts
            if flow.halves is not None:
                flow.halves[side].segment(seq, flags, payload)
                if flags & FIN:
                    flow.fins |= 1 << side
                if flags & RST or flow.fins == 3 or flow.finished:
                    s = finish(key, flow, bool(flags & RST) or flow.fins == 3)
                    if s is not None:
                        yield s
            elif flow.datagrams is not None:
                flow.datagrams[side].datagram(payload)
            elif flow.quic is not None:
                dcid = flow.quic[side].datagram(payload, flow.client_dcid)
                if side == 0 and dcid is not None:
                    flow.client_dcid = dcid
            if n % _SWEEP_EVERY == 0:
                for k, f in list(flows.items()):
                    if isinstance(f, Flow) and ts - f.last > IDLE_TIMEOUT:
                        s = finish(k, f, True)
                        if s is not None:
                            yield s
                    elif isinstance(f, _Closed) and len(flows) > 4096:
                        del flows[k]  # markers are cheap, but never unbounded
    except CaptureError as exc:
        st.error = exc.reason
    finally:
        st.frames = n
        st.bytes = nbytes
        frames.close()
    for k, f in list(flows.items()):
        if isinstance(f, Flow):
            s = finish(k, f, True)
            if s is not None:
                yield s
