package kis

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/encoding/korean"

	"github.com/kisfeed/kisfeed"
)

// masterLayout holds the offsets (from the start of the fixed-width tail)
// of the fields kisfeed reads, per market (REFERENCE §g.1–g.3).
type masterLayout struct {
	file                                                   string
	tail                                                   int
	sdpr, trht, mang, fcam, lstnDate, lstnStcn, cpfn, prst int
}

var masterLayouts = map[kisfeed.Market]masterLayout{
	kisfeed.MarketKOSPI:  {file: "kospi_code.mst", tail: 227, sdpr: 41, trht: 60, mang: 62, fcam: 93, lstnDate: 105, lstnStcn: 113, cpfn: 128, prst: 158},
	kisfeed.MarketKOSDAQ: {file: "kosdaq_code.mst", tail: 221, sdpr: 36, trht: 55, mang: 57, fcam: 88, lstnDate: 100, lstnStcn: 108, cpfn: 123, prst: 153},
	kisfeed.MarketKONEX:  {file: "konex_code.mst", tail: 184, sdpr: 2, trht: 21, mang: 23, fcam: 54, lstnDate: 66, lstnStcn: 74, cpfn: 89, prst: 119},
}

// headWidth is the code (9) + ISIN (12) prefix before the name.
const headWidth = 21

// stockEntry is a master record: the domain Stock plus the fields the
// stock-info fallback needs.
type stockEntry struct {
	kisfeed.Stock
	parValue       int64
	capital        int64
	administrative bool
}

// ParseMaster parses a KIS stock master file (kospi_code.mst,
// kosdaq_code.mst or konex_code.mst, unzipped) for market: one record per
// line, a code/ISIN head, a CP949 name and a fixed-width ASCII tail. Lines
// may end in \n or \r\n; blank lines are skipped. A malformed line fails
// the parse with an error naming the line and field.
func ParseMaster(r io.Reader, market kisfeed.Market) ([]kisfeed.Stock, error) {
	return stocksOf(parseMaster(r, market))
}

// stocksOf returns the stocks of master entries, passing err through.
func stocksOf(entries []stockEntry, err error) ([]kisfeed.Stock, error) {
	if err != nil {
		return nil, err
	}
	out := make([]kisfeed.Stock, len(entries))
	for i, e := range entries {
		out[i] = e.Stock
	}
	return out, nil
}

func parseMaster(r io.Reader, market kisfeed.Market) ([]stockEntry, error) {
	lay, ok := masterLayouts[market]
	if !ok {
		return nil, fmt.Errorf("%w: market %q: want KOSPI, KOSDAQ or KONEX", kisfeed.ErrInvalid, market)
	}
	dec := korean.EUCKR.NewDecoder() // x/text's EUC-KR is code page 949
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out []stockEntry
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimRight(sc.Bytes(), "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) < headWidth+lay.tail {
			return nil, fmt.Errorf("%s line %d: %d bytes, want at least %d (code, ISIN, name, %d-byte tail)",
				lay.file, n, len(line), headWidth+lay.tail, lay.tail)
		}
		tail := line[len(line)-lay.tail:]
		head := line[:len(line)-lay.tail]
		p := masterFields{file: lay.file, line: n, tail: tail}
		code := strings.TrimSpace(string(head[:9]))
		if len(code) > 6 {
			code = code[len(code)-6:] // R-bt keeps the last six
		}
		name, err := dec.Bytes(bytes.TrimSpace(head[headWidth:]))
		if err != nil {
			return nil, fmt.Errorf("%s line %d: name is not CP949: %w", lay.file, n, err)
		}
		e := stockEntry{Stock: kisfeed.Stock{
			Code:         code,
			ISIN:         strings.TrimSpace(string(head[9:headWidth])),
			Name:         strings.TrimSpace(string(name)),
			Market:       market,
			Group:        strings.TrimSpace(string(tail[:2])),
			Preferred:    p.str("prst_cls_code", lay.prst, 1) != "0" && p.str("prst_cls_code", lay.prst, 1) != "",
			Halted:       p.str("trht_yn", lay.trht, 1) == "Y",
			BasePrice:    p.int("stck_sdpr", lay.sdpr, 9),
			ListedShares: p.int("lstn_stcn", lay.lstnStcn, 15) * 1000, // 천주 (thousands)
			ListingDate:  p.date("stck_lstn_date", lay.lstnDate),
		}}
		e.parValue = p.int("stck_fcam", lay.fcam, 12)
		e.capital = p.int("cpfn", lay.cpfn, 21)
		e.administrative = p.str("mang_issu_yn", lay.mang, 1) == "Y"
		if p.err != nil {
			return nil, p.err
		}
		if kisfeed.ValidateCode(e.Code) != nil {
			return nil, fmt.Errorf("%s line %d: code %q: want 6 characters like 005930", lay.file, n, e.Code)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", lay.file, err)
	}
	return out, nil
}

type masterFields struct {
	file string
	line int
	tail []byte
	err  error
}

func (m *masterFields) str(name string, off, width int) string {
	return strings.TrimSpace(string(m.tail[off : off+width]))
}

func (m *masterFields) int(name string, off, width int) int64 {
	s := m.str(name, off, width)
	if s == "" {
		return 0
	}
	n, err := parseInt(s)
	if err != nil && m.err == nil {
		m.err = fmt.Errorf("%s line %d: %s: %q is not an integer", m.file, m.line, name, s)
	}
	return n
}

func (m *masterFields) date(name string, off int) time.Time {
	s := m.str(name, off, 8)
	if s == "" || strings.Trim(s, "0") == "" {
		return time.Time{}
	}
	t, err := parseDate(s)
	if err != nil && m.err == nil {
		m.err = fmt.Errorf("%s line %d: %s: %q is not a date YYYYMMDD", m.file, m.line, name, s)
	}
	return t
}

// Masters downloads and parses the KOSPI and KOSDAQ master files into the
// listed universe, sorted by code. The files come from the public
// download host ([WithMasterURL]), not the rate-limited API.
func (c *Client) Masters(ctx context.Context) ([]kisfeed.Stock, error) {
	return stocksOf(c.masters(ctx))
}

func (c *Client) masters(ctx context.Context) ([]stockEntry, error) {
	var all []stockEntry
	for _, m := range []kisfeed.Market{kisfeed.MarketKOSPI, kisfeed.MarketKOSDAQ} {
		lay := masterLayouts[m]
		data, err := c.download(ctx, c.masterURL+"/common/master/"+lay.file+".zip")
		if err != nil {
			return nil, fmt.Errorf("master %s: %w", lay.file, err)
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("master %s: not a zip: %w", lay.file, err)
		}
		var member *zip.File
		for _, f := range zr.File {
			if strings.EqualFold(f.Name, lay.file) {
				member = f
			}
		}
		if member == nil {
			return nil, fmt.Errorf("master %s: zip has no %s", lay.file, lay.file)
		}
		rc, err := member.Open()
		if err != nil {
			return nil, fmt.Errorf("master %s: %w", lay.file, err)
		}
		entries, err := parseMaster(io.LimitReader(rc, 64<<20), m)
		rc.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, entries...)
	}
	slices.SortFunc(all, func(a, b stockEntry) int { return strings.Compare(a.Code, b.Code) })
	return all, nil
}

// download GETs a public file, retrying 5xx and transport errors a few
// times.
func (c *Client) download(ctx context.Context, url string) ([]byte, error) {
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 {
			if err := c.sleep(ctx, time.Duration(attempt)*500*time.Millisecond); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		res, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
		res.Body.Close()
		switch {
		case err != nil:
			lastErr = err
		case res.StatusCode >= 500:
			lastErr = fmt.Errorf("http %d", res.StatusCode)
		case res.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("http %d", res.StatusCode)
		default:
			return b, nil
		}
	}
	return nil, lastErr
}

// universe returns the master data, downloaded at most once per KST day.
func (c *Client) universe(ctx context.Context) ([]stockEntry, error) {
	c.uniMu.Lock()
	defer c.uniMu.Unlock()
	today := kisfeed.Day(c.market())
	if c.uni != nil && c.uniDay.Equal(today) {
		return c.uni, nil
	}
	entries, err := c.masters(ctx)
	if err != nil {
		if c.uni != nil {
			// Yesterday's universe beats none.
			c.log.Warn("kis: master refresh failed; keeping the previous universe", "err", err)
			return c.uni, nil
		}
		return nil, err
	}
	c.uni, c.uniDay = entries, today
	return entries, nil
}

// lookupStock finds code in the cached universe.
func (c *Client) lookupStock(ctx context.Context, code string) (stockEntry, bool, error) {
	u, err := c.universe(ctx)
	if err != nil {
		return stockEntry{}, false, err
	}
	i, ok := slices.BinarySearchFunc(u, code, func(e stockEntry, code string) int { return strings.Compare(e.Code, code) })
	if !ok {
		return stockEntry{}, false, nil
	}
	return u[i], true, nil
}
