package emulator

import (
	"archive/zip"
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding/korean"

	"github.com/kisfeed/kisfeed"
)

func TestMasterTailWidths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tail  []tailField
		width int
		// offsets from REFERENCE §g
		offsets map[string]int
	}{
		{"kospi", kospiTail, 227, map[string]int{"stck_sdpr": 41, "trht_yn": 60, "marg_rate": 74, "prdy_vol": 81, "stck_lstn_date": 105, "lstn_stcn": 113, "cpfn": 128, "prst_cls_code": 158, "kospi_issu_yn": 162, "prdy_avls_scal": 212, "grp_code": 221, "stln_able_yn": 226}},
		{"kosdaq", kosdaqTail, 221, map[string]int{"stck_sdpr": 36, "trht_yn": 55, "marg_rate": 69, "prdy_vol": 76, "stck_lstn_date": 100, "lstn_stcn": 108, "cpfn": 123, "prst_cls_code": 153, "sale_account": 157, "prdy_avls_scal": 206, "stln_able_yn": 220}},
		{"konex", konexTail, 184, map[string]int{"stck_sdpr": 2, "stln_able_yn": 183}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off := map[string]int{}
			sum := 0
			for _, f := range tc.tail {
				off[f.name] = sum
				sum += f.width
			}
			if sum != tc.width {
				t.Errorf("tail width: got %d, want %d", sum, tc.width)
			}
			for name, want := range tc.offsets {
				if off[name] != want {
					t.Errorf("%s offset: got %d, want %d", name, off[name], want)
				}
			}
		})
	}
}

// TestMasterRoundTrip downloads the master files through the handler,
// unzips them, and parses every record the way the official parser does:
// tail = last N bytes of the line, head = code/ISIN/CP949 name.
func TestMasterRoundTrip(t *testing.T) {
	h := newHarness(t)
	m := sharedMarket()
	for _, tc := range []struct {
		url, member string
		market      kisfeed.Market
		tailWidth   int
		sdprOff     int
		sharesOff   int
	}{
		{"/common/master/kospi_code.mst.zip", "kospi_code.mst", kisfeed.MarketKOSPI, 227, 41, 113},
		{"/common/master/kosdaq_code.mst.zip", "kosdaq_code.mst", kisfeed.MarketKOSDAQ, 221, 36, 108},
		{"/common/master/konex_code.mst.zip", "konex_code.mst", kisfeed.MarketKONEX, 184, 2, 0},
	} {
		t.Run(tc.member, func(t *testing.T) {
			rec := h.do("GET", tc.url, nil, "")
			if rec.Code != 200 {
				t.Fatalf("HTTP %d", rec.Code)
			}
			zr, err := zip.NewReader(bytes.NewReader(rec.Body.Bytes()), int64(rec.Body.Len()))
			if err != nil || len(zr.File) != 1 || zr.File[0].Name != tc.member {
				t.Fatalf("zip: %v, members %v", err, zr)
			}
			f, _ := zr.File[0].Open()
			data, _ := io.ReadAll(f)
			var want []kisfeed.Stock
			for _, st := range m.Universe() {
				if st.Market == tc.market {
					want = append(want, st)
				}
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if len(data) == 0 {
				lines = nil
			}
			if len(lines) != len(want) {
				t.Fatalf("records: got %d, want %d", len(lines), len(want))
			}
			groups := map[string]int{}
			dec := korean.EUCKR.NewDecoder()
			for i, line := range lines {
				b := []byte(line)
				if len(b) != 21+masterNameWidth+tc.tailWidth {
					t.Fatalf("line %d: %d bytes, want %d", i, len(b), 21+masterNameWidth+tc.tailWidth)
				}
				tail := b[len(b)-tc.tailWidth:]
				head := b[:len(b)-tc.tailWidth]
				code := strings.TrimSpace(string(head[:9]))
				isin := string(head[9:21])
				name, err := dec.Bytes(bytes.TrimRight(head[21:], " "))
				if err != nil {
					t.Fatalf("line %d: name: %v", i, err)
				}
				st := want[i]
				if code != st.Code || isin != st.ISIN || string(name) != st.Name {
					t.Errorf("line %d: got %s %s %q, want %s %s %q", i, code, isin, name, st.Code, st.ISIN, st.Name)
				}
				if tc.market != kisfeed.MarketKONEX {
					groups[string(tail[0:2])]++
				}
				sdpr, _ := strconv.ParseInt(string(tail[tc.sdprOff:tc.sdprOff+9]), 10, 64)
				if sdpr != st.BasePrice {
					t.Errorf("%s stck_sdpr: got %d, want %d", code, sdpr, st.BasePrice)
				}
				if tc.sharesOff > 0 {
					shares, _ := strconv.ParseInt(string(tail[tc.sharesOff:tc.sharesOff+15]), 10, 64)
					if shares != st.ListedShares/1000 {
						t.Errorf("%s lstn_stcn: got %d, want %d", code, shares, st.ListedShares/1000)
					}
				}
			}
			if tc.market == kisfeed.MarketKOSPI && (groups["ST"] == 0 || groups["EF"] == 0) {
				t.Errorf("KOSPI groups: got %v, want ST and EF records", groups)
			}
		})
	}
}

func TestCP949Name(t *testing.T) {
	got := cp949Name("삼성전자", masterNameWidth)
	if len(got) != masterNameWidth || !bytes.HasPrefix(got, []byte{0xbb, 0xef}) {
		t.Errorf("got % x, want CP949 삼 (bb ef) padded to 40", got[:4])
	}
	long := "A" + strings.Repeat("가", 30) // 61 bytes: cut at a character boundary
	got = cp949Name(long, masterNameWidth)
	dec, err := korean.EUCKR.NewDecoder().Bytes(bytes.TrimRight(got, " "))
	if want := "A" + strings.Repeat("가", 19); len(got) != masterNameWidth || err != nil || string(dec) != want {
		t.Errorf("long name: got %q (%d bytes), want %q padded", dec, len(got), want)
	}
}
