package emulator

import (
	"strconv"
)

// corrupt damages one numeric field of a successful reply, for the
// client's validation layer, and says what it did. Preferred, in order:
// the high below the low (stck_hgpr/inter2_hgpr), a crossed book (bid
// above ask), else a negative or non-numeric price. The kind is drawn from
// the fault RNG.
func (s *Server) corrupt(rep *reply) (Corruption, bool) {
	type pair struct{ hi, lo, kind string }
	pairs := []pair{
		{"stck_hgpr", "stck_lwpr", "high_below_low"},
		{"inter2_hgpr", "inter2_lwpr", "high_below_low"},
		{"bidp1", "askp1", "crossed_book"},
	}
	singles := []string{"stck_prpr", "stck_clpr", "inter2_prpr", "askp1", "sbst_pric", "thdt_clpr", "lstg_stqt"}
	s.faultMu.Lock()
	pick := s.rng.IntN(3)
	s.faultMu.Unlock()

	for bi := range rep.blocks {
		bl := &rep.blocks[bi]
		target, name := bl.one, bl.name
		if bl.list {
			if len(bl.rows) == 0 {
				continue
			}
			target, name = bl.rows[0], bl.name+"[0]"
		}
		if pick == 0 {
			for _, p := range pairs {
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
				return Corruption{Block: name, Field: p.hi, Kind: p.kind, Value: target[hi].v}, true
			}
		}
		for _, f := range singles {
			i := target.index(f)
			if i < 0 {
				continue
			}
			kind, v := "negative", "-"+target[i].v
			if pick == 2 || target[i].v == "0" {
				kind, v = "non_numeric", target[i].v+"x"
			}
			target[i].v = v
			return Corruption{Block: name, Field: f, Kind: kind, Value: v}, true
		}
	}
	return Corruption{}, false
}
