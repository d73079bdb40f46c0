package fanout

// GapAll sends one gap event (reason, e.g. [GapEpoch]) to every consumer
// of every code that has consumers, and returns how many codes got one.
// A replica calls it when the KIS session's holder changed (a new epoch
// on NATS, its own takeover) or its NATS connection came back: events
// published meanwhile are lost, and consumers must hear so instead of
// silence. The gap runs from the code's newest event the hub has seen
// (now when none) to now on the market clock. Gap events are notices: no
// id, not in the ring, so a resume never replays them. Call it before
// the first event of the new epoch, so consumers see the gap first.
func (h *Hub) GapAll(reason string) int {
	now := h.cfg.Clock.Now()
	to := h.cfg.Clock.MarketNow()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for code, t := range h.topics {
		if len(t.subs) == 0 {
			continue
		}
		from := to
		if last := t.newest(); last != nil && !last.at.IsZero() {
			from = last.at
		}
		m := gapNotice(code, from, to, reason, now)
		for c := range t.subs {
			c.notifyLocked(m, now)
		}
		n++
	}
	return n
}

// newest is the ring's newest event, nil when empty.
func (t *topic) newest() *Message {
	if t.n == 0 {
		return nil
	}
	return t.ring[(t.start+t.n-1)%len(t.ring)]
}
