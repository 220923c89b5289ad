package jobs

import (
	"strings"

	"github.com/synbatch/synbatch/mas"
)

// A manifest names a MAS upstream provider by its id (the ULID, exactly) or
// by a name that picks exactly one provider: its human name or its brand
// name, case aside. MAS does not keep those names unique, so a name that
// fits two providers is refused with the candidates rather than guessed:
// a link written to the wrong provider never matches a login.

// MatchProviders lists the providers name picks: the one with that id, or
// every one whose human or brand name it is.
func MatchProviders(ps []mas.Provider, name string) []mas.Provider {
	for _, pv := range ps {
		if pv.ID == name {
			return []mas.Provider{pv}
		}
	}
	var out []mas.Provider
	for _, pv := range ps {
		if (pv.HumanName != nil && strings.EqualFold(*pv.HumanName, name)) || (pv.BrandName != nil && strings.EqualFold(*pv.BrandName, name)) {
			out = append(out, pv)
		}
	}
	return out
}

// DescribeProviders names MAS providers for a person: "ID (human name,
// brand name, issuer)".
func DescribeProviders(ps []mas.Provider) string {
	var out []string
	for _, pv := range ps {
		var about []string
		for _, s := range []*string{pv.HumanName, pv.BrandName, pv.Issuer} {
			if s != nil && *s != "" {
				about = append(about, *s)
			}
		}
		d := pv.ID
		if len(about) > 0 {
			d += " (" + strings.Join(about, ", ") + ")"
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// resolveMASProvider is the id of the one provider name picks, or the
// row's error naming MAS's providers (none) or the candidates (several).
func resolveMASProvider(ps []mas.Provider, name string) (string, error) {
	switch m := MatchProviders(ps, name); len(m) {
	case 1:
		return m[0].ID, nil
	case 0:
		return "", rowErr("MAS has no upstream provider %q (name one by its id, human name or brand name; MAS has %s)", name, DescribeProviders(ps))
	default:
		return "", rowErr("provider %q is ambiguous in MAS: it names %s; give the provider's id", name, DescribeProviders(m))
	}
}
