package kis

import (
	"archive/zip"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/text/encoding/korean"

	"github.com/kisfeed/kisfeed"
)

// masterLine builds one record: code, ISIN, a CP949 name padded to 40
// bytes, and a tail of the market's width with the given fields set.
func masterLine(t testing.TB, m kisfeed.Market, code, isin, name string, set map[int]string) []byte {
	t.Helper()
	lay := masterLayouts[m]
	enc, err := korean.EUCKR.NewEncoder().Bytes([]byte(name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString(code + strings.Repeat(" ", 9-len(code)))
	b.WriteString(isin)
	b.Write(enc)
	b.WriteString(strings.Repeat(" ", max(40-len(enc), 0)))
	tail := bytes.Repeat([]byte(" "), lay.tail)
	for off, v := range set {
		copy(tail[off:], v)
	}
	b.Write(tail)
	return b.Bytes()
}

func TestParseMaster(t *testing.T) {
	t.Parallel()
	kospi := masterLayouts[kisfeed.MarketKOSPI]
	samsung := masterLine(t, kisfeed.MarketKOSPI, "005930", "KR7005930003", "삼성전자", map[int]string{
		0: "ST", kospi.sdpr: "000056800", kospi.trht: "N", kospi.mang: "N",
		kospi.lstnDate: "19750611", kospi.lstnStcn: "000000005969782", kospi.prst: "0",
		kospi.fcam: "000000000100",
	})
	pref := masterLine(t, kisfeed.MarketKOSPI, "005935", "KR7005931001", "삼성전자우", map[int]string{
		0: "ST", kospi.sdpr: "    47000", kospi.trht: "Y", kospi.prst: "1",
	})
	file := bytes.Join([][]byte{samsung, pref, nil}, []byte("\r\n"))
	got, err := ParseMaster(bytes.NewReader(file), kisfeed.MarketKOSPI)
	if err != nil {
		t.Fatal(err)
	}
	want := []kisfeed.Stock{
		{Code: "005930", ISIN: "KR7005930003", Name: "삼성전자", Market: kisfeed.MarketKOSPI, Group: "ST",
			BasePrice: 56800, ListedShares: 5969782000, ListingDate: kisfeed.Date(1975, 6, 11)},
		{Code: "005935", ISIN: "KR7005931001", Name: "삼성전자우", Market: kisfeed.MarketKOSPI, Group: "ST",
			BasePrice: 47000, Preferred: true, Halted: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d stocks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stock %d: got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	for _, m := range []kisfeed.Market{kisfeed.MarketKOSDAQ, kisfeed.MarketKONEX} {
		lay := masterLayouts[m]
		line := masterLine(t, m, "035720", "KR7035720002", "카카오", map[int]string{0: "ST", lay.sdpr: "35000", lay.lstnStcn: "445000"})
		got, err := ParseMaster(bytes.NewReader(line), m)
		if err != nil || len(got) != 1 || got[0].BasePrice != 35000 || got[0].Name != "카카오" || got[0].ListedShares != 445000000 {
			t.Errorf("%s: got %+v %v", m, got, err)
		}
	}
}

func TestParseMasterErrors(t *testing.T) {
	t.Parallel()
	kospi := masterLayouts[kisfeed.MarketKOSPI]
	tests := []struct {
		name   string
		market kisfeed.Market
		data   []byte
		want   string
	}{
		{"bad market", "NYSE", nil, "market"},
		{"short line", kisfeed.MarketKOSPI, []byte("005930   KR7005930003삼성"), "line 1: 27 bytes"},
		{"bad price", kisfeed.MarketKOSPI, masterLine(t, kisfeed.MarketKOSPI, "005930", "KR7005930003", "x", map[int]string{kospi.sdpr: "12a"}), `stck_sdpr: "12a" is not an integer`},
		{"bad date", kisfeed.MarketKOSPI, masterLine(t, kisfeed.MarketKOSPI, "005930", "KR7005930003", "x", map[int]string{kospi.lstnDate: "20241399"}), "stck_lstn_date"},
		{"bad code", kisfeed.MarketKOSPI, masterLine(t, kisfeed.MarketKOSPI, "59", "KR7005930003", "x", nil), `code "59"`},
		{"bad name bytes", kisfeed.MarketKOSPI, append(append([]byte("005930   KR7005930003"), 0xff, 0xfe), bytes.Repeat([]byte(" "), kospi.tail)...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMaster(bytes.NewReader(tt.data), tt.market)
			if tt.want == "" {
				return // only: no panic
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v %v, want an error containing %q", got, err, tt.want)
			}
		})
	}
}

func FuzzParseMaster(f *testing.F) {
	kospi := masterLayouts[kisfeed.MarketKOSPI]
	f.Add(masterLine(f, kisfeed.MarketKOSPI, "005930", "KR7005930003", "삼성전자", map[int]string{0: "ST", kospi.sdpr: "56800"}), 0)
	f.Add([]byte("\n\r\n"), 1)
	f.Add(masterLine(f, kisfeed.MarketKONEX, "123450", "KR7123450000", "코넥스", nil), 2)
	markets := []kisfeed.Market{kisfeed.MarketKOSPI, kisfeed.MarketKOSDAQ, kisfeed.MarketKONEX}
	f.Fuzz(func(t *testing.T, data []byte, m int) {
		market := markets[(m%3+3)%3]
		stocks, err := ParseMaster(bytes.NewReader(data), market)
		if err != nil {
			return
		}
		for _, s := range stocks {
			if kisfeed.ValidateCode(s.Code) != nil {
				t.Fatalf("accepted bad code %q", s.Code)
			}
		}
	})
}

// masterZip zips one member.
func masterZip(t testing.TB, name string, data []byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	zw.Close()
	return b.Bytes()
}

func TestMastersDownload(t *testing.T) {
	t.Parallel()
	kospi := masterLine(t, kisfeed.MarketKOSPI, "005930", "KR7005930003", "삼성전자", map[int]string{0: "ST"})
	kosdaq := masterLine(t, kisfeed.MarketKOSDAQ, "035720", "KR7035720002", "카카오", map[int]string{0: "ST"})
	tests := []struct {
		name    string
		kospi   http.HandlerFunc
		want    int
		wantErr string
	}{
		{"ok after a 503", sequence(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) },
			func(w http.ResponseWriter, r *http.Request) { w.Write(masterZip(t, "kospi_code.mst", kospi)) }), 2, ""},
		{"not a zip", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("nope")) }, 0, "not a zip"},
		{"wrong member", func(w http.ResponseWriter, r *http.Request) { w.Write(masterZip(t, "other.mst", kospi)) }, 0, "zip has no kospi_code.mst"},
		{"404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, 0, "http 404"},
		{"always 500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, 0, "http 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := testClient(t, f.url())
			newFakeClock(marketDay).install(c)
			f.handle("/common/master/kospi_code.mst.zip", tt.kospi)
			f.handle("/common/master/kosdaq_code.mst.zip", func(w http.ResponseWriter, r *http.Request) {
				w.Write(masterZip(t, "kosdaq_code.mst", kosdaq))
			})
			// The fake requires an authorization header on handlers;
			// master downloads carry none, so serve them unauthenticated.
			f.mu.Lock()
			f.open = true
			f.mu.Unlock()
			got, err := c.Masters(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want || got[0].Code != "005930" || got[1].Market != kisfeed.MarketKOSDAQ {
				t.Fatalf("got %+v %v", got, err)
			}
			// Cached for the day: a second call does not download again.
			before := f.count("/common/master/kospi_code.mst.zip")
			s := NewSource(c)
			for range 2 {
				if _, err := s.Universe(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.count("/common/master/kospi_code.mst.zip") - before; got != 1 {
				t.Errorf("downloads for two Universe calls: got %d, want 1", got)
			}
		})
	}
}

var _ = errors.New
