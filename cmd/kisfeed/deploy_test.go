package main

// The operator files under deploy/ (the Grafana dashboard and the
// Prometheus alert rules) name metrics by string; nothing but this test
// ties those strings to what serve exports. A renamed metric would leave
// a panel empty and an alert silent without a word, so every metric name
// in their PromQL must be one serve's /metrics registry registers.
//
// The names come from the registry's descriptors (Describe), not from a
// scrape: client_golang gathers no family for a vector with no series
// yet (a stream counter before the first reconnect, the ingestion gauges
// without a database), so a scrape of a fresh serve lacks names that are
// exported all the same. serveMetrics is the function serve itself calls,
// so what is checked is what serve registers.
//
// PromQL is tokenized here rather than parsed with
// github.com/prometheus/prometheus, which is not a module this project may
// use: metric names are the identifiers that are not functions,
// aggregation operators, keywords or label names (inside {...}, and in the
// label lists of by/without/on/ignoring/group_left/group_right);
// name_bucket, name_sum and name_count resolve to histogram name.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	dashboardPath = "../../deploy/grafana/kisfeed.json"
	alertsPath    = "../../deploy/prometheus/alerts.yml"
)

// prometheusOwn are series Prometheus itself writes for every target or
// rule, which a rule may use though no exporter registers them.
var prometheusOwn = []string{
	"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
	"scrape_series_added", "ALERTS", "ALERTS_FOR_STATE",
}

// exprSource is one PromQL expression and where it came from.
type exprSource struct {
	where string // file and rule or panel, for the failure message
	expr  string
}

// TestDeployMetricNames: every metric the dashboard and the alert rules
// query is registered by serve (or recorded by the rules, or written by
// Prometheus itself).
func TestDeployMetricNames(t *testing.T) {
	t.Parallel()
	known := servedMetricNames(t)
	rules, recorded := readRules(t, alertsPath)
	for _, r := range recorded {
		known[r] = true
	}
	srcs := append(rules, readDashboard(t, dashboardPath)...)
	if len(srcs) < 20 {
		t.Fatalf("found %d expressions in %s and %s; the readers have lost track of the files", len(srcs), alertsPath, dashboardPath)
	}
	for _, p := range checkNames(known, srcs) {
		t.Error(p)
	}
	used := map[string]bool{}
	for _, s := range srcs {
		names, _ := promqlMetricNames(s.expr)
		for _, n := range names {
			used[n] = true
		}
	}
	t.Logf("%d expressions, %d distinct metric names checked", len(srcs), len(used))
}

// TestCheckNamesCatchesUnknown: the check fails on a name serve does not
// export, in a rule or a panel, and lets through known names, histogram
// series and recorded names.
func TestCheckNamesCatchesUnknown(t *testing.T) {
	t.Parallel()
	known := servedMetricNames(t)
	known["kisfeed:cache_hit_ratio:rate10m"] = true
	tests := []struct {
		expr string
		want []string // the unknown names reported
	}{
		{`sum(rate(kisfeed_cache_hits_total[5m]))`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(kisfeed_stream_lag_seconds_bucket[5m])))`, nil},
		{`kisfeed:cache_hit_ratio:rate10m < 0.8`, nil},
		{`rate(kisfeed_stream_lag_seconds_count[1m]) / rate(kisfeed_stream_lag_seconds_sum[1m])`, nil},
		{`up{job="kisfeed"} == 0`, nil},
		{`kisfeed_breaker_open == 1`, []string{"kisfeed_breaker_open"}},
		{`sum by (job) (rate(kisfeed_kis_errors_totl{msg_cd="EGW00201"}[2m])) > 1`, []string{"kisfeed_kis_errors_totl"}},
		{`rate(kisfeed_breaker_state_bucket[5m])`, nil}, // a limitation: see servedMetricNames
		{`kisfeed_no_such_bucket`, []string{"kisfeed_no_such_bucket"}},
	}
	for _, tt := range tests {
		probs := checkNames(known, []exprSource{{where: "test", expr: tt.expr}})
		var got []string
		for _, p := range probs {
			if m := regexp.MustCompile(`metric (\S+) `).FindStringSubmatch(p); m != nil {
				got = append(got, m[1])
			} else {
				got = append(got, p)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got problems %q, want unknown names %q", tt.expr, probs, tt.want)
		}
	}
}

// checkNames returns one problem per metric name an expression uses that
// known does not hold (directly, or as a histogram's _bucket, _sum or
// _count series), and one per expression that does not tokenize.
func checkNames(known map[string]bool, srcs []exprSource) []string {
	var probs []string
	for _, s := range srcs {
		names, err := promqlMetricNames(s.expr)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v in %q", s.where, err, s.expr))
			continue
		}
		for _, n := range names {
			if !knownName(known, n) {
				probs = append(probs, fmt.Sprintf("%s: metric %s is not exported by serve's /metrics (expression %q)", s.where, n, s.expr))
			}
		}
	}
	return probs
}

func knownName(known map[string]bool, n string) bool {
	if known[n] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(n, suffix); ok && known[base] {
			return true
		}
	}
	return false
}

// servedMetricNames returns the names serve registers, from the
// descriptors of every collector serveMetrics registers, plus the series
// Prometheus writes itself.
//
// A descriptor does not say a metric's type, so a _bucket/_sum/_count
// suffix is accepted on any registered name, not only on histograms.
func servedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	rec := &nameRecorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	serveMetrics(rec)
	if rec.err != nil {
		t.Fatal(rec.err)
	}
	for _, must := range []string{"kisfeed_breaker_state", "kisfeed_stream_reconnects_total", "go_goroutines"} {
		if !rec.names[must] {
			t.Fatalf("serve's registry lacks %s (read %d names): the descriptor reader is broken", must, len(rec.names))
		}
	}
	for _, n := range prometheusOwn {
		rec.names[n] = true
	}
	return rec.names
}

// fqNameRE reads the name from prometheus.Desc.String.
var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// nameRecorder is a prometheus.Registerer that notes the name of every
// descriptor registered through it, then registers on the real registry
// (which still refuses duplicates and inconsistent descriptors).
type nameRecorder struct {
	prometheus.Registerer
	names map[string]bool
	err   error
}

func (r *nameRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			r.err = errors.Join(r.err, fmt.Errorf("no fqName in descriptor %s", d))
			continue
		}
		r.names[m[1]] = true
	}
	return r.Registerer.Register(c)
}

func (r *nameRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// readDashboard returns the PromQL of a Grafana dashboard: every "expr"
// (panel targets, at any depth) and the selectors of its query
// variables.
func readDashboard(t *testing.T, path string) []exprSource {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []exprSource
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = path + ": panel " + strconv.Quote(title)
			}
			if e, ok := v["expr"].(string); ok {
				out = append(out, exprSource{where: where, expr: e})
			}
			for k, c := range v {
				if k != "templating" {
					walk(c, where)
				}
			}
		case []any:
			for _, c := range v {
				walk(c, where)
			}
		}
	}
	walk(dash, path)
	root, _ := dash.(map[string]any)
	tpl, _ := root["templating"].(map[string]any)
	vars, _ := tpl["list"].([]any)
	for _, v := range vars {
		v, _ := v.(map[string]any)
		if v["type"] != "query" {
			continue
		}
		where := path + ": variable " + fmt.Sprint(v["name"])
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		e, err := variableExpr(q)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if e != "" {
			out = append(out, exprSource{where: where, expr: e})
		}
	}
	return out
}

// variableExpr returns the PromQL inside a Grafana Prometheus variable
// query: the selector of label_values(selector, label), the expression of
// query_result(expr); "" for forms with no metric (label_values(label),
// label_names()).
func variableExpr(q string) (string, error) {
	q = strings.TrimSpace(q)
	fn, rest, ok := strings.Cut(q, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return "", fmt.Errorf("variable query %q: want label_values(...), query_result(...) or label_names()", q)
	}
	args := strings.TrimSpace(strings.TrimSuffix(rest, ")"))
	switch strings.TrimSpace(fn) {
	case "label_values":
		i := strings.LastIndexByte(args, ',')
		if i < 0 {
			return "", nil // label_values(label): no metric
		}
		return args[:i], nil
	case "query_result":
		return args, nil
	case "label_names":
		return "", nil
	}
	return "", fmt.Errorf("variable query %q: unknown function %s", q, fn)
}

// readRules returns the expressions of a Prometheus rule file and the
// names its recording rules define. It reads the subset of YAML rule
// files use for expr: a plain or quoted scalar on the key's line, or a
// block scalar (| or >) below it, and checks that it found one
// expression per rule.
func readRules(t *testing.T, path string) (srcs []exprSource, recorded []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srcs, recorded, rules, err := parseRules(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(srcs) != rules || rules == 0 {
		t.Fatalf("%s: %d rules (alert: or record:) but %d expr:, want one each", path, rules, len(srcs))
	}
	for i := range srcs {
		srcs[i].where = path + ": " + srcs[i].where
	}
	return srcs, recorded
}

var ruleKeyRE = regexp.MustCompile(`^(\s*)(?:- )?(alert|record|expr):\s*(.*)$`)

func parseRules(text string) (srcs []exprSource, recorded []string, rules int, err error) {
	lines := strings.Split(text, "\n")
	rule := ""
	for i := 0; i < len(lines); i++ {
		m := ruleKeyRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, key, val := len(m[1]), m[2], strings.TrimSpace(m[3])
		switch key {
		case "alert", "record":
			rules++
			rule = key + " " + strings.Trim(val, `"'`)
			if key == "record" {
				recorded = append(recorded, strings.Trim(val, `"'`))
			}
			continue
		}
		var expr string
		switch {
		case val == "" || strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">"):
			// A block scalar: the lines indented deeper than the key.
			var body []string
			for i+1 < len(lines) {
				l := lines[i+1]
				if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
					break
				}
				body = append(body, l)
				i++
			}
			expr = strings.Join(body, "\n")
		case strings.HasPrefix(val, `"`):
			if err := json.Unmarshal([]byte(val), &expr); err != nil {
				return nil, nil, 0, fmt.Errorf("line %d: double-quoted expr this reader does not understand: %w", i+1, err)
			}
		case strings.HasPrefix(val, `'`):
			if !strings.HasSuffix(val, `'`) || len(val) < 2 {
				return nil, nil, 0, fmt.Errorf("line %d: single-quoted expr spanning lines; use a block scalar (|)", i+1)
			}
			expr = strings.ReplaceAll(val[1:len(val)-1], "''", "'")
		default:
			expr, _, _ = strings.Cut(val, " #")
		}
		srcs = append(srcs, exprSource{where: fmt.Sprintf("%s (line %d)", rule, i+1), expr: expr})
	}
	return srcs, recorded, rules, nil
}

// PromQL words that are never metric names. Aggregation operators and
// keywords are case-insensitive in PromQL; function names are recognised
// by the "(" that follows them.
var (
	promqlAggregations = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true,
	}
	// promqlLabelLists are followed by a parenthesised list of label
	// names (optional after group_left and group_right).
	promqlLabelLists = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"inf": true, "nan": true,
	}
)

// promqlMetricNames returns the metric names an expression selects, in
// order of appearance, each once. It understands Grafana's $var, ${var}
// and $__interval-style variables (skipped), strings, comments, label
// matchers (a __name__="x" matcher is a name; a regex on __name__ is an
// error, as its names cannot be checked), range and subquery brackets,
// and label lists.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	s := expr
	i := 0
	peek := func(j int) byte { // the next non-space byte at or after j
		for ; j < len(s); j++ {
			if c := s[j]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c
			}
		}
		return 0
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				j := strings.IndexByte(s[i:], '}')
				if j < 0 {
					return nil, errors.New("unterminated ${")
				}
				i += j + 1
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
		case c == '{':
			end, name, err := scanMatchers(s, i)
			if err != nil {
				return nil, err
			}
			if name != "" {
				add(name)
			}
			i = end
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, errors.New("unterminated [")
			}
			i += j + 1
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number or a duration (5m, 1h30m, 0x1f, 1e3).
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			lower := strings.ToLower(word)
			next := peek(j)
			i = j
			switch {
			case promqlLabelLists[lower]:
				if next == '(' {
					k := strings.IndexByte(s[i:], ')')
					if k < 0 {
						return nil, fmt.Errorf("unterminated label list after %s", word)
					}
					i += k + 1
				}
			case promqlKeywords[lower], promqlAggregations[lower]:
			case next == '(':
				// A function call: time(), rate(...), histogram_quantile(...).
			default:
				add(word)
			}
		default:
			i++ // an operator or punctuation
		}
	}
	return names, nil
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// scanMatchers skips the label matchers starting at the '{' at i and
// returns the index after the '}', and the metric name of a
// __name__="..." matcher if there is one.
func scanMatchers(s string, i int) (end int, name string, err error) {
	for j := i + 1; j < len(s); {
		switch c := s[j]; {
		case c == '}':
			return j + 1, name, nil
		case c == '"' || c == '\'' || c == '`':
			if j, err = skipString(s, j); err != nil {
				return 0, "", err
			}
		case isIdentStart(c):
			k := j
			for k < len(s) && isIdentChar(s[k]) {
				k++
			}
			label := s[j:k]
			j = k
			if label != "__name__" {
				continue
			}
			for j < len(s) && s[j] == ' ' {
				j++
			}
			op := ""
			for j < len(s) && strings.IndexByte("=!~", s[j]) >= 0 {
				op += string(s[j])
				j++
			}
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if op != "=" || j >= len(s) || s[j] != '"' {
				return 0, "", fmt.Errorf("__name__%s: only __name__=\"name\" can be checked", op)
			}
			k, err := skipString(s, j)
			if err != nil {
				return 0, "", err
			}
			name, j = s[j+1:k-1], k
		default:
			j++
		}
	}
	return 0, "", fmt.Errorf("unterminated { at %d", i)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func TestPromQLMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`kisfeed_breaker_state{state="open"} == 1`, []string{"kisfeed_breaker_state"}},
		{`sum by (job, instance) (rate(kisfeed_kis_errors_total{msg_cd="EGW00201"}[2m])) > 1`, []string{"kisfeed_kis_errors_total"}},
		{`SUM BY (job) (a) / ignoring (kind) group_left (instance) b`, []string{"a", "b"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job", instance=~"${instance}"}[$__rate_interval])))`, []string{"x_bucket"}},
		{`max by (job) (d) == 1 and on () ((vector(time()) + 9 * 3600) % 86400 >= 17 * 3600) unless on (job) (max by (job) (e) >= time() - 1)`, []string{"d", "e"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`count_values("version", build_info) offset 5m`, []string{"build_info"}},
		{`rate(m[5m:1m] @ start())`, []string{"m"}},
		{`{__name__="by_name", job="x"}`, []string{"by_name"}},
		{"a # a comment naming not_a_metric\n+ b", []string{"a", "b"}},
		{`a:recorded:rate5m < 0.8 and on (job) a:recorded:rate5m > bool 1e-3`, []string{"a:recorded:rate5m"}},
		{`topk(5, m) or vector(0) > Inf`, []string{"m"}},
		{`m{le="+Inf"}`, []string{"m"}},
	}
	for _, tt := range tests {
		got, err := promqlMetricNames(tt.expr)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, %v; want %q", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{`m{job="x"`, `m{__name__=~"kisfeed_.*"}`, `rate(m[5m`, `m{a="b}`} {
		if got, err := promqlMetricNames(bad); err == nil {
			t.Errorf("%s: got %q, want an error", bad, got)
		}
	}
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	text := `groups:
  - name: g
    rules:
      - record: a:b:rate5m
        expr: sum(rate(x_total[5m])) # trailing comment
      - alert: One
        expr: |
          y
          > 1
        for: 1m
      - alert: "Two"
        expr: "z{a=\"b\"} == 0"
      - alert: Three
        expr: 'w == 1'
`
	srcs, recorded, rules, err := parseRules(text)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		got = append(got, strings.TrimSpace(s.expr))
	}
	want := []string{"sum(rate(x_total[5m]))", "y\n          > 1", `z{a="b"} == 0`, "w == 1"}
	if !slices.Equal(got, want) || rules != 4 || !slices.Equal(recorded, []string{"a:b:rate5m"}) {
		t.Errorf("got exprs %q, %d rules, recorded %q; want %q, 4, [a:b:rate5m]", got, rules, recorded, want)
	}
}

// TestDashboardPromQL: every dashboard expression parses, checked by
// promtool (Debian's prometheus package) as recording rules with the
// Grafana variables replaced by plain values. .ci/run installs promtool,
// so CI never skips this.
func TestDashboardPromQL(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: apt-get install prometheus (Debian's package ships promtool)")
	}
	srcs := readDashboard(t, dashboardPath)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "${job}", ".*", "$job", ".*", "${instance}", ".*", "$instance", ".*")
	for i, s := range srcs {
		e, _ := json.Marshal(vars.Replace(s.expr))
		fmt.Fprintf(&b, "      - record: dashboard_expr_%d\n        expr: %s\n", i, e)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules on the dashboard's expressions: %v\n%s", err, out)
		for i, s := range srcs {
			t.Logf("dashboard_expr_%d: %s: %s", i, s.where, s.expr)
		}
	}
}
