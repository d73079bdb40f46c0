package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// OpenAPI is the OpenAPI 3 document of the API, served at /openapi.json.
// A test keeps its paths in step with the registered routes and its
// schemas with the JSON the handlers write.
//
//go:embed openapi.json
var OpenAPI []byte

var openAPILength = []string{strconv.Itoa(len(OpenAPI))}

func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = openAPILength
	h["Cache-Control"] = []string{"max-age=300"}
	_, _ = w.Write(OpenAPI)
}
