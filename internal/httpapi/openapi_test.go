package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed/internal/jsonview"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       map[string]any                        `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `json:"properties"`
			Required   []string       `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info["title"] == nil || doc.Info["version"] == nil || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json: got openapi %q, info %v, %d paths; want 3.x, title, version, paths", doc.OpenAPI, doc.Info, len(doc.Paths))
	}
	return doc
}

// TestOpenAPIRoutes keeps the document's operations equal to the routes
// the server registers.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	stream := http.NotFoundHandler()
	srv := New(Options{Source: fakeSource(nil), Gatherer: prometheus.NewRegistry(), Stream: stream, StreamWS: stream})
	registered := srv.Routes()
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(registered)
	slices.Sort(documented)
	if !slices.Equal(registered, documented) {
		t.Errorf("routes and openapi.json paths differ:\nregistered %v\ndocumented %v", registered, documented)
	}
}

// TestOpenAPISchemas keeps each schema's properties equal to the JSON
// fields the handlers write, and the required lists within them.
func TestOpenAPISchemas(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	tests := map[string]any{
		"Quote":          jsonview.Quote{},
		"Level":          jsonview.Level{},
		"OrderBook":      jsonview.OrderBook{},
		"Candle":         jsonview.Candle{},
		"Candles":        jsonview.Candles{},
		"StockInfo":      jsonview.StockInfo{},
		"BatchItemError": batchItemError{},
		"QuoteBatch":     batchJSON{},
		"Stock":          jsonview.Stock{},
		"Stocks":         stocksJSON{},
		"Calendar":       calendarJSON{},
		"Problem":        Problem{},
		"Health":         healthJSON{},
		"Ready":          readyJSON{},
		"Meta":           jsonview.Meta{},
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			schema, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("schema %s: missing from openapi.json", name)
			}
			fields := jsonFields(reflect.TypeOf(v))
			props := slices.Sorted(maps.Keys(schema.Properties))
			if !slices.Equal(fields, props) {
				t.Errorf("schema %s properties:\ngot  %v\nwant %v (the Go type's JSON fields)", name, props, fields)
			}
			for _, r := range schema.Required {
				if !slices.Contains(fields, r) {
					t.Errorf("schema %s: required %q is not a field", name, r)
				}
			}
		})
	}
}

// jsonFields lists the JSON names of a struct type, embedded structs
// flattened, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed checks /openapi.json serves the embedded document.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	stream := http.NotFoundHandler()
	srv := New(Options{Source: fakeSource(nil), Stream: stream, StreamWS: stream})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != 200 || rec.Body.String() != string(OpenAPI) {
		t.Errorf("/openapi.json: got %d and %d bytes, want 200 and the embedded %d bytes", rec.Code, rec.Body.Len(), len(OpenAPI))
	}
	// Without a stream the document leaves the stream routes out (the
	// page asks the document before opening /v1/stream) and keeps the rest.
	rec = newFixture(t, nil).get(t, "/openapi.json")
	var served, embedded map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil {
		t.Fatalf("served document: %v", err)
	}
	_ = json.Unmarshal(OpenAPI, &embedded)
	delete(embedded["paths"].(map[string]any), StreamPath)
	delete(embedded["paths"].(map[string]any), StreamWSPath)
	if !reflect.DeepEqual(served, embedded) {
		t.Errorf("without a stream: served document differs from the embedded one minus %s and %s", StreamPath, StreamWSPath)
	}
}
