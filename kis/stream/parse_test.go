package stream

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// decodeAll frames msg and decodes every record, as the session does.
func decodeAll(p *parser, msg []byte, day time.Time) ([]kisfeed.Trade, []kisfeed.Book, error) {
	f, err := p.split(msg)
	if err != nil {
		return nil, nil, err
	}
	var trades []kisfeed.Trade
	var books []kisfeed.Book
	for i := range f.count {
		if f.lay.kind == KindTrade {
			var t kisfeed.Trade
			if err := p.decodeTrade(f.lay.tr, f.record(i), &t); err != nil {
				return trades, books, err
			}
			trades = append(trades, t)
		} else {
			var b kisfeed.Book
			if err := p.decodeBook(f.lay.tr, f.record(i), day, &b); err != nil {
				return trades, books, err
			}
			books = append(books, b)
		}
	}
	return trades, books, nil
}

// widen appends extra fields to every record of a frame.
func widen(t *testing.T, frame string, width, extra int) string {
	t.Helper()
	parts := strings.SplitN(frame, "|", 4)
	fields := strings.Split(parts[3], "^")
	var out []string
	for i := 0; i < len(fields); i += width {
		out = append(out, fields[i:i+width]...)
		for j := range extra {
			out = append(out, "X"+string(rune('a'+j)))
		}
	}
	return strings.Join(parts[:3], "|") + "|" + strings.Join(out, "^")
}

// setField replaces field i of record 0.
func setField(frame string, i int, v string) string {
	parts := strings.SplitN(frame, "|", 4)
	fields := strings.Split(parts[3], "^")
	fields[i] = v
	return strings.Join(parts[:3], "|") + "|" + strings.Join(fields, "^")
}

var fixtureTrade = kisfeed.Trade{
	Code: "005930", Time: time.Date(2024, 10, 25, 10, 2, 1, 0, kisfeed.KST),
	Price: 56800, Change: -800, ChangeRate: -1.39, Volume: 12, CumVolume: 9365880, CumValue: 532118700000,
	Open: 57300, High: 57600, Low: 56500, Ask: 56900, Bid: 56800, AskQty: 48211, BidQty: 12933,
	Side: kisfeed.SideSell, VWAP: 57050, Strength: 88.41, TotalAskQty: 1523340, TotalBidQty: 1877415,
}

func TestParseFixtureFrames(t *testing.T) {
	fx := loadFixtures(t)
	second := fixtureTrade
	second.Price, second.Change, second.ChangeRate, second.VWAP = 56900, -700, -1.22, 57075
	second.Volume, second.CumVolume, second.CumValue, second.Side = 305, 9366185, 532136050000, kisfeed.SideBuy
	day := time.Date(2024, 10, 25, 0, 0, 0, 0, kisfeed.KST)
	tests := []struct {
		name   string
		frame  string
		trades []kisfeed.Trade
		books  int
	}{
		{"one record", fx.Trade1, []kisfeed.Trade{fixtureTrade}, 0},
		{"two records", fx.Trade2, []kisfeed.Trade{fixtureTrade, second}, 0},
		{"two records, 3 extra fields each", widen(t, fx.Trade2, tradeWidth, 3), []kisfeed.Trade{fixtureTrade, second}, 0},
		{"integrated TR, same layout", strings.Replace(fx.Trade1, TrTradeKRX, TrTradeIntegrated, 1), []kisfeed.Trade{fixtureTrade}, 0},
		{"book", fx.Book, nil, 1},
		{"book, 6 extra fields", widen(t, fx.Book, bookWidth, 6), nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trades, books, err := decodeAll(newParser(nil), []byte(tt.frame), day)
			if err != nil {
				t.Fatal(err)
			}
			if len(trades) != len(tt.trades) || len(books) != tt.books {
				t.Fatalf("got %d trades %d books, want %d and %d", len(trades), len(books), len(tt.trades), tt.books)
			}
			for i := range trades {
				if !trades[i].Time.Equal(tt.trades[i].Time) {
					t.Errorf("trade %d time %s, want %s", i, trades[i].Time, tt.trades[i].Time)
				}
				trades[i].Time = tt.trades[i].Time
				if trades[i] != tt.trades[i] {
					t.Errorf("trade %d:\n got %+v\nwant %+v", i, trades[i], tt.trades[i])
				}
			}
			for _, b := range books {
				checkFixtureBook(t, b, day)
			}
		})
	}
}

func checkFixtureBook(t *testing.T, b kisfeed.Book, day time.Time) {
	t.Helper()
	if b.Code != "005930" || !b.Time.Equal(day.Add(10*time.Hour+2*time.Minute+time.Second)) {
		t.Errorf("book code %q time %s", b.Code, b.Time)
	}
	if b.Asks[0] != (kisfeed.Level{Price: 56900, Quantity: 48211}) || b.Asks[9] != (kisfeed.Level{Price: 57800, Quantity: 61200}) {
		t.Errorf("asks %+v", b.Asks)
	}
	if b.Bids[0] != (kisfeed.Level{Price: 56800, Quantity: 12933}) || b.Bids[9] != (kisfeed.Level{Price: 55900, Quantity: 88455}) {
		t.Errorf("bids %+v", b.Bids)
	}
	if b.TotalAskQty != 989531 || b.TotalBidQty != 1296400 || b.CumVolume != 9366185 || b.ExpectedPrice != 0 {
		t.Errorf("totals %d %d cum %d expected %d", b.TotalAskQty, b.TotalBidQty, b.CumVolume, b.ExpectedPrice)
	}
}

func TestParseRejects(t *testing.T) {
	fx := loadFixtures(t)
	tests := []struct {
		name   string
		frame  string
		reason string
		field  string
	}{
		{"empty", "", ReasonHeader, ""},
		{"json", `{"header":{}}`, ReasonHeader, ""},
		{"no tr", "0|H0STCNT0", ReasonHeader, ""},
		{"no count", "0|H0STCNT0|", ReasonHeader, ""},
		{"count not a number", strings.Replace(fx.Trade1, "|001|", "|0x1|", 1), ReasonCount, "count"},
		{"count zero", strings.Replace(fx.Trade1, "|001|", "|000|", 1), ReasonCount, "count"},
		{"count does not divide", strings.Replace(fx.Trade1, "|001|", "|003|", 1), ReasonCount, "count"},
		{"count halves a record", strings.Replace(fx.Trade1, "|001|", "|002|", 1), ReasonWidth, ""},
		{"count too small for two records", strings.Replace(fx.Trade2, "|002|", "|003|", 1), ReasonCount, "count"},
		{"record narrower than the layout", fx.Trade1[:strings.LastIndex(fx.Trade1, "^")], ReasonWidth, ""},
		{"book narrower", fx.Book[:strings.LastIndex(fx.Book, "^")], ReasonWidth, ""},
		{"unknown TR", strings.Replace(fx.Trade1, TrTradeKRX, "H0XXXXX0", 1), ReasonUnknownTR, ""},
		{"price not a number", setField(fx.Trade1, tPrice, "56,800"), ReasonNumber, "STCK_PRPR"},
		{"rate not a number", setField(fx.Trade1, tRate, "-1.3.9"), ReasonNumber, "PRDY_CTRT"},
		{"fractional volume", setField(fx.Trade1, tVolume, "12.5"), ReasonNumber, "CNTG_VOL"},
		{"bad date", setField(fx.Trade1, tDate, "2024102"), ReasonNumber, "BSOP_DATE+STCK_CNTG_HOUR"},
		{"bad hour", setField(fx.Trade1, tHour, "250000"), ReasonNumber, "BSOP_DATE+STCK_CNTG_HOUR"},
		{"empty code", setField(fx.Trade1, tCode, ""), ReasonNumber, "MKSC_SHRN_ISCD"},
		{"book level not a number", setField(fx.Book, bAsk1+4, "abc"), ReasonNumber, "ASKP5"},
		{"book qty 10 not a number", setField(fx.Book, bBidQty1+9, "-"), ReasonNumber, "BIDP_RSQN10"},
		{"book hour", setField(fx.Book, bHour, "1002"), ReasonNumber, "BSOP_HOUR"},
		{"encrypted", "1|H0STCNI0|001|c2VjcmV0", ReasonEncrypted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeAll(newParser(nil), []byte(tt.frame), kisfeed.Date(2024, 10, 25))
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFrame) {
				t.Fatalf("err = %v, want a *FrameError matching ErrFrame", err)
			}
			if fe.Reason != tt.reason || fe.Field != tt.field {
				t.Errorf("reason %q field %q, want %q %q (%v)", fe.Reason, fe.Field, tt.reason, tt.field, err)
			}
			if enc := errors.Is(err, ErrEncrypted); enc != (tt.reason == ReasonEncrypted) {
				t.Errorf("errors.Is(err, ErrEncrypted) = %v", enc)
			}
			if len(fe.Value) > 40 {
				t.Errorf("value %d bytes, want ≤ 40", len(fe.Value))
			}
		})
	}
}

func TestParseNumbers(t *testing.T) {
	ints := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"-800", -800, true}, {"+5", 5, true}, {"57050.00", 57050, true},
		{"532118700000", 532118700000, true}, {"-", 0, false}, {"1.5", 0, false}, {".0", 0, false},
		{"1e3", 0, false}, {"9999999999999999999", 0, false},
	}
	for _, tt := range ints {
		if got, ok := parseInt([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	floats := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 0, true}, {"-1.39", -1.39, true}, {"57050.00", 57050, true}, {"88.41", 88.41, true},
		{"0.16", 0.16, true}, {"12345678901234567.5", 12345678901234567.5, true},
		{".", 0, false}, {"1..2", 0, false}, {"abc", 0, false}, {"-", 0, false},
	}
	for _, tt := range floats {
		if got, ok := parseFloat([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseFloat(%q) = %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestWideRecordsLoggedOnce checks that wider records are reported once
// per TR and width, however many frames carry them.
func TestWideRecordsLoggedOnce(t *testing.T) {
	fx := loadFixtures(t)
	var buf bytes.Buffer
	w := &wideLog{log: slog.New(slog.NewTextHandler(&buf, nil))}
	p := newParser(w)
	frames := []string{widen(t, fx.Trade1, tradeWidth, 3), widen(t, fx.Trade2, tradeWidth, 3),
		widen(t, fx.Trade1, tradeWidth, 4), fx.Trade1}
	for _, f := range frames {
		if _, _, err := decodeAll(p, []byte(f), kisfeed.Date(2024, 10, 25)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "wider than the known layout"); n != 2 {
		t.Errorf("logged %d times, want 2 (widths 49 and 50):\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "extra=3") {
		t.Errorf("log does not count the extra fields:\n%s", buf.String())
	}
}

// FuzzParseFrame: whatever arrives, the parser never panics, and a frame
// it accepts decodes record by record without panicking either.
func FuzzParseFrame(f *testing.F) {
	fx := loadFixtures(f)
	for _, s := range []string{fx.Trade1, fx.Trade2, fx.Book, "1|H0STCNI0|001|abc", "0|H0STCNT0|001|",
		"0|H0STASP0|002|" + strings.Repeat("^", 117), string(fx.PingPong)} {
		f.Add([]byte(s))
	}
	p := newParser(&wideLog{})
	day := kisfeed.Date(2024, 10, 25)
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := p.split(msg)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not match ErrFrame", err)
			}
			return
		}
		if fr.count*fr.width != len(fr.fields) || fr.width < fr.lay.width {
			t.Fatalf("accepted frame count %d width %d fields %d", fr.count, fr.width, len(fr.fields))
		}
		for i := range fr.count {
			var err error
			if fr.lay.kind == KindTrade {
				var tr kisfeed.Trade
				err = p.decodeTrade(fr.lay.tr, fr.record(i), &tr)
			} else {
				var b kisfeed.Book
				err = p.decodeBook(fr.lay.tr, fr.record(i), day, &b)
			}
			if err != nil && !errors.Is(err, ErrFrame) {
				t.Fatalf("record error %v does not match ErrFrame", err)
			}
		}
	})
}
