package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// DecodeJSON decodes the request body into v, refusing what a sloppy client
// would otherwise get away with: a content type other than JSON (415), a body
// over the limit set by LimitBody (413), unknown fields, values of the wrong
// type, malformed JSON and anything after the first JSON value (400). The
// returned *Error names the offending field where there is one; pass it to
// WriteError as it is.
func DecodeJSON(r *http.Request, v any) error {
	if err := requireJSON(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.Body == nil {
		return Errorf(ErrInvalid, "the request body is empty")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// A second value, or garbage, after the first is a client bug that would
	// otherwise be silently ignored.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return Errorf(ErrInvalid, "the request body must hold a single JSON value, found more after it")
	default:
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return decodeError(err)
		}
		return Errorf(ErrInvalid, "the request body must hold a single JSON value, found more after it")
	}
}

// requireJSON accepts application/json and the +json structured suffixes
// (application/merge-patch+json), with any parameters such as charset.
func requireJSON(contentType string) error {
	if contentType == "" {
		return Errorf(ErrUnsupportedMedia, "the Content-Type header is missing; send application/json")
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return Errorf(ErrUnsupportedMedia, "Content-Type %q is not supported; send application/json", contentType)
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax    *json.SyntaxError
		typ       *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		badTarget *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooLarge):
		return Errorf(ErrTooLarge, "the request body exceeds %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return Errorf(ErrInvalid, "the request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(ErrInvalid, "the request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return Errorf(ErrInvalid, "the request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Errorf(ErrInvalid, "the request body must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
		}
		return FieldError(typ.Field, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &badTarget):
		return Wrap(ErrInternal, err, "")
	}
	// encoding/json has no type for unknown fields: its message is the API.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unquoted, uerr := strconv.Unquote(name); uerr == nil {
			name = unquoted
		}
		return FieldError(name, "unknown field %q", name)
	}
	return Errorf(ErrInvalid, "the request body is not valid JSON")
}

// jsonType names a Go kind the way a JSON client thinks of it.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return fmt.Sprintf("a %s", kind)
}
