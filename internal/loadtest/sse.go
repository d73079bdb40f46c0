package loadtest

import (
	"bufio"
	"bytes"
	"io"
)

// sseReader reads a text/event-stream (the WHATWG "server-sent events"
// format) one event at a time: "field: value" lines, a blank line ending
// each event, comment lines starting with ':'. No SSE library is in the
// stack and the format is small. Lines end with "\n" or "\r\n"; a lone
// "\r" (allowed by the format, sent by no server we know) is not
// recognised.
type sseReader struct {
	sc *bufio.Scanner
	// lastID persists across events, as the format's "last event ID
	// buffer" does: an event without an id line keeps the previous one.
	lastID string
	// idSet is whether the event being read has its own id line.
	idSet   bool
	event   string
	data    []byte
	hasData bool
}

// sseMaxLine bounds one line (a book event's data is about 2 kB).
const sseMaxLine = 1 << 20

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), sseMaxLine)
	return &sseReader{sc: sc}
}

// sseEvent is one dispatched event, or a comment when comment is true.
// data is valid until the next call to next. id is the last event ID
// (inherited from an earlier event when this one has no id line); ownID
// says whether this event carried its own.
type sseEvent struct {
	id, event string
	ownID     bool
	data      []byte
	comment   bool
}

// next returns the next event or comment; at the end of the stream the
// error is io.EOF (an unfinished event is dropped, as the format says).
func (r *sseReader) next() (sseEvent, error) {
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if !r.hasData { // an event without data is not dispatched
				r.event, r.idSet = "", false
				continue
			}
			ev := sseEvent{id: r.lastID, ownID: r.idSet, event: r.event, data: r.data}
			if ev.event == "" {
				ev.event = "message"
			}
			r.event, r.data, r.hasData, r.idSet = "", r.data[:0], false, false
			return ev, nil
		}
		if line[0] == ':' {
			return sseEvent{comment: true, data: bytes.TrimSpace(line[1:])}, nil
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			if bytes.IndexByte(value, 0) < 0 { // the format ignores ids with NUL
				if string(value) != r.lastID {
					r.lastID = string(value)
				}
				r.idSet = true
			}
		case "event":
			r.event = string(value)
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			r.hasData = true
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
