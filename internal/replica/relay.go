package replica

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/fanout"
)

// head is what onEvent reads of an event's JSON.
type head struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// onEvent forwards an event from NATS into the hub: not this replica's
// own (its hub has it already), not a stale holder's; the first event of
// a newer epoch sends the consumers their gap events first.
func (r *Replica) onEvent(kind string, code kisfeed.Code, payload []byte) {
	var hd head
	if err := json.Unmarshal(payload, &hd); err != nil {
		r.log.Warn("nats: event is not JSON", "kind", kind, "code", code.String())
		return
	}
	id, err := fanout.ParseID(hd.ID)
	if err != nil {
		r.log.Warn("nats: event without a valid id", "kind", kind, "code", code.String())
		return
	}
	ep, ok := parseEpoch(id.Epoch)
	r.mu.Lock()
	own := r.ownEpochs[id.Epoch]
	r.mu.Unlock()
	if own || !ok {
		r.skipped.Add(1)
		return
	}
	r.fwdMu.Lock()
	defer r.fwdMu.Unlock()
	switch {
	case ep.raw == r.lastEp.raw:
	case r.lastEp.newerThan(ep, r.cfg.TTL):
		r.skipped.Add(1) // a dead holder's late event after its successor's
		return
	default:
		r.newEpochLocked(ep)
	}
	if err := r.hub.Forward(kind, code.String(), hd.ID, hd.Time, payload); err != nil {
		r.log.Warn("nats: event not forwarded", "err", err)
		return
	}
	r.forwarded.Add(1)
}

// newEpochLocked makes ep the newest epoch and, if there was one before,
// sends every consumer a gap event (r.fwdMu held).
func (r *Replica) newEpochLocked(ep epoch) {
	prev := r.lastEp
	r.lastEp = ep
	if prev.raw == "" {
		return
	}
	n := r.hub.GapAll(fanout.GapEpoch)
	r.gaps.Add(uint64(n))
	r.log.Info("stream holder changed: gap events sent", "from_epoch", prev.raw, "to_epoch", ep.raw, "codes", n)
}

// epoch is a tenure's identity, "{fence}.{start ms, base 36}.{replica tag}":
// the fence orders tenures while Redis keeps its counter, the start time
// (and the tag) keep ids unique when Redis lost it and fences restart.
type epoch struct {
	raw   string
	fence int64
	start int64 // Unix ms
}

func makeEpoch(fence int64, start time.Time, tag string) epoch {
	raw := strconv.FormatInt(fence, 10) + "." + strconv.FormatInt(start.UnixMilli(), 36) + "." + tag
	return epoch{raw: raw, fence: fence, start: start.UnixMilli()}
}

func parseEpoch(s string) (epoch, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return epoch{}, false
	}
	f, err1 := strconv.ParseInt(parts[0], 10, 64)
	st, err2 := strconv.ParseInt(parts[1], 36, 64)
	if err1 != nil || err2 != nil {
		return epoch{}, false
	}
	return epoch{raw: s, fence: f, start: st}, true
}

// newerThan reports whether e is a later tenure than o: a higher fence,
// unless o began more than a ttl after e (Redis lost the fence counter
// and fences restarted; tenures cannot overlap, so a start a ttl later is
// a later tenure whatever the clocks' small skew).
func (e epoch) newerThan(o epoch, ttl time.Duration) bool {
	if e.raw == "" {
		return false
	}
	if o.start > e.start+ttl.Milliseconds() {
		return false
	}
	if e.start > o.start+ttl.Milliseconds() {
		return true
	}
	return e.fence > o.fence
}
