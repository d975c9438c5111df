package httpx

import (
	"fmt"
	"net/url"
)

// PathSegment returns id escaped as one segment of a URL path, so that
// `/`, `%`, `?` and `#` in it stay part of it, and refuses an ID that no
// escaping keeps from meaning something else: empty, `.` or `..`, which
// every server and proxy reads as the folder itself or the one above.
// what names the ID in the error.
func PathSegment(what, id string) (string, error) {
	switch id {
	case "":
		return "", fmt.Errorf("%s is empty", what)
	case ".", "..":
		return "", fmt.Errorf("%s %q is not valid in a URL path", what, id)
	}
	return url.PathEscape(id), nil
}
