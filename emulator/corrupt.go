package emulator

import (
	"strconv"
)

// corruptPairs are the hi/lo field pairs a high_below_low or crossed_book
// corruption breaks; corruptSingles the fields made negative or
// non-numeric.
var (
	corruptPairs = []struct{ hi, lo, kind string }{
		{"stck_hgpr", "stck_lwpr", "high_below_low"},
		{"inter2_hgpr", "inter2_lwpr", "high_below_low"},
		{"bidp1", "askp1", "crossed_book"},
	}
	corruptSingles = []string{"stck_prpr", "stck_clpr", "inter2_prpr", "askp1", "sbst_pric", "thdt_clpr", "lstg_stqt"}
)

// corruptTarget is one object of a reply that corrupt may damage: a
// single-object block, or one row of a list block.
type corruptTarget struct {
	o    obj
	name string // output1, output2[3], ...
}

// corruptible reports whether corrupt finds a field to damage in o.
func corruptible(o obj) bool {
	for _, p := range corruptPairs {
		if o.index(p.hi) >= 0 && o.index(p.lo) >= 0 {
			return true
		}
	}
	for _, f := range corruptSingles {
		if o.index(f) >= 0 {
			return true
		}
	}
	return false
}

// corrupt damages one numeric field of a successful reply, for the
// client's validation layer, and says what it did. Preferred, in order:
// the high below the low (stck_hgpr/inter2_hgpr), a crossed book (bid
// above ask), else a negative or non-numeric price. The kind is drawn from
// the fault RNG, and so is the object: any block with such a field, then
// any row of a list block. A daily or minute chart's output2 bars are hit
// as well as its output1 summary, so the candles path's validation is
// exercised, not only the quote's. A reply with a single candidate object
// (inquire-price) draws only the kind, as it always did, so a seed picks
// the same faults there as before rows were drawn.
func (s *Server) corrupt(rep *reply) (Corruption, bool) {
	// Candidates by block: one object, or the rows of a list.
	var blocks [][]corruptTarget
	total := 0
	for bi := range rep.blocks {
		bl := &rep.blocks[bi]
		var ts []corruptTarget
		if !bl.list {
			if corruptible(bl.one) {
				ts = append(ts, corruptTarget{bl.one, bl.name})
			}
		} else {
			for ri, row := range bl.rows {
				if corruptible(row) {
					ts = append(ts, corruptTarget{row, bl.name + "[" + strconv.Itoa(ri) + "]"})
				}
			}
		}
		if len(ts) > 0 {
			blocks = append(blocks, ts)
			total += len(ts)
		}
	}
	if total == 0 {
		return Corruption{}, false
	}
	// The block is drawn first and then its row, so a chart's output1
	// and its output2 bars are hit equally often however many bars
	// there are.
	s.faultMu.Lock()
	pick := s.rng.IntN(3)
	bi, ri := 0, 0
	if len(blocks) > 1 {
		bi = s.rng.IntN(len(blocks))
	}
	if len(blocks[bi]) > 1 {
		ri = s.rng.IntN(len(blocks[bi]))
	}
	s.faultMu.Unlock()
	var targets []corruptTarget
	for k := range blocks {
		targets = append(targets, blocks[(bi+k)%len(blocks)]...)
	}
	first := ri
	// Start at the drawn object; one whose values cannot take the drawn
	// kind (a zero low) passes to the next, so a reply with any candidate
	// is always corrupted.
	for k := range targets {
		tg := targets[(first+k)%len(targets)]
		target, name := tg.o, tg.name
		if pick == 0 {
			for _, p := range corruptPairs {
				hi, lo := target.index(p.hi), target.index(p.lo)
				if hi < 0 || lo < 0 {
					continue
				}
				lv, err := strconv.ParseInt(target[lo].v, 10, 64)
				if err != nil || lv <= 1 {
					continue
				}
				if p.kind == "crossed_book" {
					// bid one above the ask
					target[hi].v = strconv.FormatInt(lv+1, 10)
				} else {
					target[hi].v = strconv.FormatInt(lv-1, 10)
				}
				return Corruption{Block: name, Field: p.hi, Kind: p.kind, Value: target[hi].v, Date: rowDate(target)}, true
			}
		}
		for _, f := range corruptSingles {
			i := target.index(f)
			if i < 0 {
				continue
			}
			kind, v := "negative", "-"+target[i].v
			if pick == 2 || target[i].v == "0" {
				kind, v = "non_numeric", target[i].v+"x"
			}
			target[i].v = v
			return Corruption{Block: name, Field: f, Kind: kind, Value: v, Date: rowDate(target)}, true
		}
	}
	return Corruption{}, false
}

// rowDate is a chart row's business date (stck_bsop_date), "" elsewhere:
// it tells a test whether the corrupted bar is one the caller keeps (a
// window's lookback row is only a reference).
func rowDate(o obj) string {
	if i := o.index("stck_bsop_date"); i >= 0 {
		return o[i].v
	}
	return ""
}
