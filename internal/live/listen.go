package live

import (
	"slices"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// listener is one registered handler.
type listener struct {
	id uint64
	h  Handler
}

// listenerSet is an immutable snapshot of the handlers: the reader loads
// it with one atomic read per event, and changes copy it (they are rare:
// a consumer arriving or leaving).
type listenerSet struct {
	byCode map[string][]listener
	all    []listener
}

// Listen calls h with every event of code (trades, books and gaps) until
// stop is called. It does not register anything with KIS: demand is
// [Live.Acquire]'s. h runs on the KIS reader and must not block.
func (l *Live) Listen(code kisfeed.Code, h Handler) (stop func()) {
	return l.addListener(code.String(), h)
}

// ListenAll calls h with every event of every code until stop is called
// (the write-through; a relay to other replicas).
func (l *Live) ListenAll(h Handler) (stop func()) { return l.addListener("", h) }

func (l *Live) addListener(code string, h Handler) func() {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	l.nextID++
	id := l.nextID
	l.update(func(s *listenerSet) {
		if code == "" {
			s.all = append(s.all, listener{id, h})
		} else {
			s.byCode[code] = append(s.byCode[code], listener{id, h})
		}
	})
	stopped := false
	return func() {
		l.lmu.Lock()
		defer l.lmu.Unlock()
		if stopped {
			return
		}
		stopped = true
		drop := func(ls []listener) []listener {
			return slices.DeleteFunc(ls, func(x listener) bool { return x.id == id })
		}
		l.update(func(s *listenerSet) {
			if code == "" {
				s.all = drop(s.all)
			} else if s.byCode[code] = drop(s.byCode[code]); len(s.byCode[code]) == 0 {
				delete(s.byCode, code)
			}
		})
	}
}

// update replaces the listener set with a changed copy; l.lmu is held.
func (l *Live) update(change func(*listenerSet)) {
	old := l.listeners.Load()
	s := &listenerSet{byCode: make(map[string][]listener, len(old.byCode)+1), all: slices.Clone(old.all)}
	for k, v := range old.byCode {
		s.byCode[k] = slices.Clone(v)
	}
	change(s)
	l.listeners.Store(s)
}

// eventCode is the code an event is about.
func eventCode(ev *stream.Event) string {
	switch ev.Kind {
	case stream.EventTrade:
		return ev.Trade.Code
	case stream.EventBook:
		return ev.Book.Code
	case stream.EventGap:
		return ev.Gap.Code
	}
	return ""
}

// dispatch is the client's Handler: every listener of the event's code,
// then every listener of all codes. A gap is also noted for the log.
func (l *Live) dispatch(ev stream.Event) {
	if ev.Kind == stream.EventGap {
		l.gaps.gap(ev.Key, ev.Gap)
	}
	s := l.listeners.Load()
	for _, x := range s.byCode[eventCode(&ev)] {
		x.h(ev)
	}
	for _, x := range s.all {
		x.h(ev)
	}
}
