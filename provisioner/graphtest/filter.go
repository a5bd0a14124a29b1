package graphtest

import (
	"fmt"
	"strings"
	"unicode"
)

// The $filter subset Graph accepts on /users without advanced queries, as
// the provisioner uses it:
//
//	expr    = term { "or" term }
//	term    = factor { "and" factor }
//	factor  = "(" expr ")" | "not" factor | path "eq" literal | path "/any(" var ":" expr ")"
//	path    = name [ "/" name ]          (inside a lambda: var or var/name)
//	literal = 'text with '' quoting' | true | false | null
//
// String comparisons are case-insensitive, as they are in the directory.

// messageError carries the text Graph answers, verbatim (capitalised, with
// its full stop), to put in an error envelope.
type messageError struct{ msg string }

func (e *messageError) Error() string { return e.msg }

func graphMessage(format string, args ...any) error {
	return &messageError{fmt.Sprintf(format, args...)}
}

// filterNode is a parsed $filter expression evaluated against a JSON object.
type filterNode interface {
	eval(obj map[string]any, vars map[string]any) bool
}

type orNode struct{ left, right filterNode }
type andNode struct{ left, right filterNode }
type notNode struct{ inner filterNode }

// eqNode compares a property path (or a lambda variable) with a literal.
type eqNode struct {
	path  []string // first element may be a lambda variable
	value any      // string, bool or nil
}

// anyNode is collection/any(v: expr).
type anyNode struct {
	collection string
	variable   string
	body       filterNode
}

func (n orNode) eval(o map[string]any, v map[string]any) bool {
	return n.left.eval(o, v) || n.right.eval(o, v)
}
func (n andNode) eval(o map[string]any, v map[string]any) bool {
	return n.left.eval(o, v) && n.right.eval(o, v)
}
func (n notNode) eval(o map[string]any, v map[string]any) bool { return !n.inner.eval(o, v) }

func (n eqNode) eval(o map[string]any, vars map[string]any) bool {
	var cur any = o
	path := n.path
	if x, ok := vars[path[0]]; ok {
		cur, path = x, path[1:]
	}
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur = m[p]
	}
	switch want := n.value.(type) {
	case nil:
		return cur == nil
	case bool:
		b, ok := cur.(bool)
		return ok && b == want
	case string:
		s, ok := cur.(string)
		return ok && strings.EqualFold(s, want)
	}
	return false
}

func (n anyNode) eval(o map[string]any, vars map[string]any) bool {
	items, _ := o[n.collection].([]any)
	for _, it := range items {
		inner := make(map[string]any, len(vars)+1)
		for k, v := range vars {
			inner[k] = v
		}
		inner[n.variable] = it
		if n.body.eval(o, inner) {
			return true
		}
	}
	return false
}

// filterProperties are the user properties Graph lets a filter name without
// ConsistencyLevel: eventual.
var filterProperties = map[string]bool{
	"id": true, "mail": true, "userPrincipalName": true, "displayName": true, "userType": true,
	"givenName": true, "surname": true, "accountEnabled": true, "otherMails": true, "identities": true,
	"proxyAddresses": true, "externalUserState": true,
}

// lambdaProperties are the sub-properties a lambda over identities may name.
var lambdaProperties = map[string]bool{"issuer": true, "issuerAssignedId": true, "signInType": true}

type filterParser struct {
	toks []string
	pos  int
	vars map[string]bool
}

// parseFilter parses a $filter value; the error text is what Graph would
// answer.
func parseFilter(s string) (filterNode, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks, vars: map[string]bool{}}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, graphMessage("Invalid filter clause: syntax error at position %d in '%s'.", p.pos, s)
	}
	return n, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ':' || c == '/' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			var b strings.Builder
			b.WriteByte('\'')
			j := i + 1
			for {
				if j >= len(s) {
					return nil, graphMessage("Invalid filter clause: unterminated string literal at position %d in '%s'.", i, s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					j++
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, b.String())
			i = j
		default:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] == '-' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			if j == i {
				return nil, graphMessage("Invalid filter clause: unexpected character '%c' at position %d in '%s'.", c, i, s)
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *filterParser) expect(t string) error {
	if got := p.next(); got != t {
		return graphMessage("Invalid filter clause: expected '%s' but found '%s'.", t, got)
	}
	return nil
}

func (p *filterParser) expr() (filterNode, error) {
	return p.binary("or", p.term, func(l, r filterNode) filterNode { return orNode{l, r} })
}

func (p *filterParser) term() (filterNode, error) {
	return p.binary("and", p.factor, func(l, r filterNode) filterNode { return andNode{l, r} })
}

// binary parses operand {op operand}, joining the operands left to right.
func (p *filterParser) binary(op string, operand func() (filterNode, error), join func(l, r filterNode) filterNode) (filterNode, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for p.peek() == op {
		p.next()
		right, err := operand()
		if err != nil {
			return nil, err
		}
		left = join(left, right)
	}
	return left, nil
}

func (p *filterParser) factor() (filterNode, error) {
	switch t := p.peek(); {
	case t == "(":
		p.next()
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		return n, p.expect(")")
	case t == "not":
		p.next()
		n, err := p.factor()
		return notNode{n}, err
	case t == "" || strings.HasPrefix(t, "'"):
		return nil, graphMessage("Invalid filter clause: expected a property but found '%s'.", t)
	}
	name := p.next()
	path := []string{name}
	if p.peek() == "/" {
		p.next()
		sub := p.next()
		if sub == "any" && !p.vars[name] {
			return p.lambda(name)
		}
		path = append(path, sub)
	}
	if err := p.checkPath(path); err != nil {
		return nil, err
	}
	if op := p.next(); op != "eq" {
		return nil, graphMessage("Invalid filter clause: unsupported operator '%s'; only 'eq' is supported here.", op)
	}
	v, err := p.literal()
	if err != nil {
		return nil, err
	}
	return eqNode{path: path, value: v}, nil
}

func (p *filterParser) checkPath(path []string) error {
	if p.vars[path[0]] {
		if len(path) == 2 && !lambdaProperties[path[1]] {
			return graphMessage("Could not find a property named '%s' on type 'microsoft.graph.objectIdentity'.", path[1])
		}
		return nil
	}
	if len(path) > 1 || !filterProperties[path[0]] {
		return graphMessage("Unsupported or invalid query filter clause specified for property '%s' of resource 'User'.", strings.Join(path, "/"))
	}
	if path[0] == "otherMails" || path[0] == "identities" || path[0] == "proxyAddresses" {
		return graphMessage("Invalid filter clause: the collection property '%s' must be used with any().", path[0])
	}
	return nil
}

func (p *filterParser) lambda(collection string) (filterNode, error) {
	if collection != "otherMails" && collection != "identities" && collection != "proxyAddresses" {
		return nil, graphMessage("Unsupported or invalid query filter clause specified for property '%s' of resource 'User'.", collection)
	}
	if err := p.expect("("); err != nil {
		return nil, err
	}
	v := p.next()
	if v == "" || !unicode.IsLetter(rune(v[0])) || filterProperties[v] {
		return nil, graphMessage("Invalid filter clause: bad lambda variable '%s'.", v)
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	p.vars[v] = true
	body, err := p.expr()
	delete(p.vars, v)
	if err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return anyNode{collection: collection, variable: v, body: body}, nil
}

func (p *filterParser) literal() (any, error) {
	t := p.next()
	switch {
	case strings.HasPrefix(t, "'"):
		return t[1:], nil
	case t == "true":
		return true, nil
	case t == "false":
		return false, nil
	case t == "null":
		return nil, nil
	}
	return nil, graphMessage("Invalid filter clause: expected a literal but found '%s'.", t)
}
