package fanout

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kisfeed/kisfeed"
)

// plan decides what a subscribe asks of the hub: for each code new to
// the consumer, whether it may have it (listed, under MaxCodes, a quota
// unit — fresh lists the codes that took one), and for every code the
// (code, kind) registrations it lacks. A refused code gets its error
// event here. c.op is held.
func (c *Consumer) plan(ctx context.Context, codes []kisfeed.Code, kinds Kinds) (wants []*want, fresh []string) {
	h := c.hub
	count := len(c.subs)
	for _, code := range codes {
		have, known := c.subs[code.String()]
		if !known {
			if h.unlisted(ctx, []kisfeed.Code{code}) != "" {
				c.refuse(code.String(), ReasonUnknownCode, unknownDetail(code.String()))
				continue
			}
			if count >= h.cfg.MaxCodes {
				c.refuse(code.String(), ReasonTooManyCodes, fmt.Sprintf("a consumer streams at most %d codes", h.cfg.MaxCodes))
				continue
			}
			if c.quota != nil {
				if err := c.quota.AcquireCodes(1); err != nil {
					c.refuse(code.String(), ReasonQuota, err.Error())
					continue
				}
			}
			fresh = append(fresh, code.String())
			count++
		}
		for _, k := range (kinds &^ have).streamKinds() {
			wants = append(wants, &want{code: code.Clone(), kind: k})
		}
	}
	return wants, fresh
}

// resumeLocked returns what a consumer resuming after id gets for codes:
// the rings' later events in id order, or, for a code whose ring cannot
// tell (another epoch, events evicted), a gap event. When the replay
// would not fit the queue every code gets a gap instead.
func (c *Consumer) resumeLocked(id ID, codes []string, now time.Time) []*Message {
	h := c.hub
	to := h.cfg.Clock.MarketNow()
	var gaps, replay []*Message
	var lasts []time.Time
	for _, code := range codes {
		msgs, complete, last := h.topics[code].after(id)
		if h.topics[code] == nil || h.topics[code].n == 0 {
			// No event of the code since this hub started: nothing to
			// replay if the epoch is still id's.
			complete = true
		}
		lasts = append(lasts, last)
		switch {
		case id.Epoch != h.current:
			gaps = append(gaps, gapNotice(code, last, to, GapEpoch, now))
		case !complete:
			gaps = append(gaps, gapNotice(code, last, to, GapRing, now))
		default:
			k := c.subs[code]
			for _, m := range msgs {
				if m.Type == TypeGap || (m.Type == TypeTrade && k.Has(Trades)) || (m.Type == TypeBook && k.Has(Books)) {
					replay = append(replay, m)
				}
			}
		}
	}
	if len(replay) > h.cfg.QueueSize {
		gaps, replay = gaps[:0], nil
		for i, code := range codes {
			gaps = append(gaps, gapNotice(code, lasts[i], to, GapRing, now))
		}
	}
	slices.SortFunc(replay, func(a, b *Message) int {
		switch {
		case a.id.Seq < b.id.Seq:
			return -1
		case a.id.Seq > b.id.Seq:
			return 1
		}
		return 0
	})
	return append(gaps, replay...)
}
