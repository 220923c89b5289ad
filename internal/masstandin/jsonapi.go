package masstandin

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// resource is one JSON:API resource as MAS's admin API renders it.
type resource struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Attributes any            `json:"attributes"`
	Links      map[string]any `json:"links"`
	Meta       *resourceMeta  `json:"meta,omitempty"`
}

type resourceMeta struct {
	Page struct {
		Cursor string `json:"cursor"`
	} `json:"page"`
}

func newResource(typ, path, id string, attrs any) resource {
	return resource{Type: typ, ID: id, Attributes: attrs, Links: map[string]any{"self": path + "/" + id}}
}

// single writes {"data": r, "links": {"self": …}}.
func single(w http.ResponseWriter, code int, r resource, self string) {
	if self == "" {
		self = r.Links["self"].(string)
	}
	writeJSON(w, code, map[string]any{"data": r, "links": map[string]string{"self": self}})
}

// apiError writes MAS's error shape, {"errors":[{"title":…}]}.
func apiError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]any{"errors": []map[string]string{{"title": fmt.Sprintf(format, args...)}}})
}

func sortByID[T any](xs []T, id func(T) string) {
	sort.Slice(xs, func(i, j int) bool { return id(xs[i]) < id(xs[j]) })
}

// pagination is page[first|last|after|before] and count, as MAS parses them.
type pagination struct {
	first, last   int
	after, before string
	count         string // "true" (default), "false", "only"
}

func parsePagination(q url.Values) (pagination, error) {
	p := pagination{count: "true"}
	for _, k := range []string{"page[first]", "page[last]"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, fmt.Errorf("invalid %s: %q", k, v)
		}
		if k == "page[first]" {
			p.first = n
		} else {
			p.last = n
		}
	}
	if p.first > 0 && p.last > 0 {
		return p, fmt.Errorf("Cannot specify both `page[first]` and `page[last]` parameters")
	}
	p.after, p.before = q.Get("page[after]"), q.Get("page[before]")
	for _, c := range []string{p.after, p.before} {
		if c != "" && validULID(c) != nil {
			return p, fmt.Errorf("invalid cursor %q: not a ULID", c)
		}
	}
	switch c := q.Get("count"); c {
	case "", "true":
	case "false", "only":
		p.count = c
	default:
		return p, fmt.Errorf("invalid count %q", c)
	}
	return p, nil
}

// paginate writes a page of rs (sorted by id) the way MAS does: items after
// page[after] and before page[before], the first (or last) N, each with its
// cursor, meta.count the number of items the filters match, and links to the
// first, last, next and previous pages. filterQuery is the request's filters,
// repeated in the links.
func paginate(w http.ResponseWriter, path, filterQuery string, p pagination, rs []resource) {
	total := len(rs)
	lo, hi := 0, len(rs)
	if p.after != "" {
		lo = sort.Search(len(rs), func(i int) bool { return rs[i].ID > p.after })
	}
	if p.before != "" {
		hi = sort.Search(len(rs), func(i int) bool { return rs[i].ID >= p.before })
	}
	if hi < lo {
		hi = lo
	}
	n := defaultPageSize
	backward := p.last > 0
	switch {
	case p.first > 0:
		n = p.first
	case backward:
		n = p.last
	}
	start, end := lo, hi
	if backward {
		if end-start > n {
			start = end - n
		}
	} else if end-start > n {
		end = start + n
	}
	page := rs[start:end]
	// MAS only knows whether there is more in the direction it paged in.
	hasNext, hasPrev := end < hi, false
	if backward {
		hasNext, hasPrev = false, start > lo
	}

	link := func(after, before string, fwd bool) string {
		q := filterQuery
		if before != "" {
			q += "&page[before]=" + before
		}
		if after != "" {
			q += "&page[after]=" + after
		}
		if fwd {
			q += "&page[first]=" + strconv.Itoa(n)
		} else {
			q += "&page[last]=" + strconv.Itoa(n)
		}
		return path + "?" + strings.TrimLeft(q, "&")
	}
	links := map[string]any{
		"self":  link(p.after, p.before, !backward),
		"first": link("", "", true),
		"last":  link("", "", false),
	}
	if hasNext && len(page) > 0 {
		links["next"] = link(page[len(page)-1].ID, "", !backward)
	}
	if hasPrev && len(page) > 0 {
		links["prev"] = link("", page[0].ID, !backward)
	}
	out := map[string]any{"links": links}
	if p.count != "false" {
		out["meta"] = map[string]any{"count": total}
	}
	if p.count != "only" {
		data := make([]resource, 0, len(page))
		for _, r := range page {
			r.Meta = &resourceMeta{}
			r.Meta.Page.Cursor = r.ID
			data = append(data, r)
		}
		out["data"] = data
	}
	writeJSON(w, http.StatusOK, out)
}

// filterQuery rebuilds the filter[...] parameters of a request for links.
func filterQuery(q url.Values) string {
	var keys []string
	for k := range q {
		if strings.HasPrefix(k, "filter[") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, k+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// boolFilter reads filter[name]=true|false; set is false when absent.
func boolFilter(q url.Values, name string) (val, set bool, err error) {
	v := q.Get("filter[" + name + "]")
	if v == "" {
		return false, false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, false, fmt.Errorf("invalid filter[%s]: %q", name, v)
	}
	return b, true, nil
}
