package loadtest

import (
	"strconv"
	"strings"
)

// idTracker checks one consumer's event ids ("<epoch>-<seq>", seq rising
// within an epoch across all codes) for repeats and order in bounded
// memory: it keeps the highest seq seen of the current epoch and a bitmap
// of which of the idWindow seqs below it were seen. A repeat within the
// window is a duplicate for sure; an id further back than the window is
// counted as late (it could be a duplicate too, but a server that far
// behind has bigger problems, and remembering every id of a 5-minute
// run for 1,000 consumers would not stay small).
type idTracker struct {
	epoch string
	top   uint64 // highest seq seen in epoch
	have  bool   // whether any id of epoch was seen
	win   [idWindow / 64]uint64
	// old are the last epochs left, newest last: an id of one of them
	// arriving after the switch is out of order.
	old []string
}

// idWindow is how many seqs below the highest one the tracker remembers
// (4 kB per consumer).
const idWindow = 1 << 15

// idVerdict is what one id says about the stream.
type idVerdict uint8

const (
	idInOrder    idVerdict = iota
	idDuplicate            // seen before
	idOutOfOrder           // below the highest seq of its epoch, not seen before, or an earlier epoch
	idLate                 // below the window: unknown whether seen
	idBad                  // not "<epoch>-<seq>"
	idNewEpoch             // the first id of a new epoch
)

// see records id and says how it fits.
func (t *idTracker) see(id string) idVerdict {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return idBad
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return idBad
	}
	epoch := id[:i]
	verdict := idInOrder
	if epoch != t.epoch {
		for _, o := range t.old {
			if o == epoch {
				return idOutOfOrder
			}
		}
		if t.epoch != "" {
			if len(t.old) == 4 {
				t.old = t.old[1:]
			}
			t.old = append(t.old, t.epoch)
			verdict = idNewEpoch
		}
		t.epoch, t.have, t.win = epoch, false, [idWindow / 64]uint64{}
	}
	switch {
	case !t.have || seq > t.top:
		t.advance(seq)
		t.have = true
		t.setBit(seq)
		return verdict
	case t.top-seq >= idWindow:
		return idLate
	case t.bit(seq):
		return idDuplicate
	default:
		t.setBit(seq)
		return idOutOfOrder
	}
}

// advance moves the top to seq, forgetting the seqs that leave the
// window.
func (t *idTracker) advance(seq uint64) {
	if !t.have || seq-t.top >= idWindow {
		t.win = [idWindow / 64]uint64{}
		t.top = seq
		return
	}
	for s := t.top + 1; s <= seq; {
		if s%64 == 0 && seq-s >= 63 {
			t.win[(s/64)%uint64(len(t.win))] = 0
			s += 64
			continue
		}
		t.win[(s/64)%uint64(len(t.win))] &^= 1 << (s % 64)
		s++
	}
	t.top = seq
}

func (t *idTracker) bit(s uint64) bool {
	return t.win[(s/64)%uint64(len(t.win))]&(1<<(s%64)) != 0
}

func (t *idTracker) setBit(s uint64) { t.win[(s/64)%uint64(len(t.win))] |= 1 << (s % 64) }
