package api

import (
	_ "embed"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIPath is where the OpenAPI document is served, under Prefix.
const openAPIPath = "/openapi.json"

// openAPIDoc is a string so that nobody can change it.
//
//go:embed openapi.json
var openAPIDoc string

// OpenAPIDocument returns the OpenAPI 3 description of the API, as served
// at GET /api/v1/openapi.json. A test keeps it in step with the routes.
func OpenAPIDocument() []byte { return []byte(openAPIDoc) }

// serveOpenAPI is GET /openapi.json; it needs no credentials.
func serveOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Content-Type", "application/json")
	c.Response().WriteHeader(http.StatusOK)
	_, err := io.WriteString(c.Response(), openAPIDoc)
	return err
}
