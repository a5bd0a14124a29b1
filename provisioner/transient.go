package provisioner

import "errors"

// Transient reports whether err is a Graph failure worth trying again
// soon: throttling, Graph unavailable, no answer at all or one that could
// not be read, or one of the answers a just-created user gets while the
// directory replicates. Callers that wait for an answer, such as the
// line-of-business invite API, retry these until their own deadline;
// anything else is final.
func Transient(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	c := classify(ge)
	return c == transient || c == lagging
}
