package httpapi

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"
)

// OpenAPI is the OpenAPI 3 document of the API, served at /openapi.json.
// A test keeps its paths in step with the registered routes and its
// schemas with the JSON the handlers write.
//
//go:embed openapi.json
var OpenAPI []byte

// openAPIHandler serves doc.
func openAPIHandler(doc []byte) http.HandlerFunc {
	length := []string{strconv.Itoa(len(doc))}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = length
		h["Cache-Control"] = []string{"max-age=300"}
		_, _ = w.Write(doc)
	}
}

// openAPIWithout returns the document without the given paths: what a
// server that does not serve them (the stream routes without a stream)
// publishes, so clients (the page's live.js) do not ask for them. Its
// keys come out sorted; the content is the same.
func openAPIWithout(paths ...string) []byte {
	if len(paths) == 0 {
		return OpenAPI
	}
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		panic("httpapi: openapi.json does not parse: " + err.Error()) // a test parses it
	}
	ps, _ := doc["paths"].(map[string]any)
	for _, p := range paths {
		delete(ps, p)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("httpapi: openapi.json: " + err.Error())
	}
	return append(out, '\n')
}
