package cloud

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ParseCIDRs checks and normalises --allow-cidr values. A bare IP becomes a
// /32 (or /128); host bits set is an error because it is usually a typo.
func ParseCIDRs(in []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, raw := range in {
		s := strings.TrimSpace(raw)
		var p netip.Prefix
		if a, err := netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		} else {
			p, err = netip.ParsePrefix(s)
			if err != nil {
				return nil, Usagef("--allow-cidr %q is not a CIDR like 198.51.100.7/32", raw)
			}
		}
		if p.Addr().Zone() != "" {
			return nil, Usagef("--allow-cidr %q: zoned addresses are not allowed", raw)
		}
		if p.Masked() != p {
			return nil, Usagef("--allow-cidr %q has host bits set; did you mean %s?", raw, p.Masked())
		}
		if !p.Addr().Is4() {
			return nil, Usagef("--allow-cidr %q: only IPv4 CIDRs are supported (the default VPC has no IPv6 route)", raw)
		}
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p.String())
		}
	}
	return out, nil
}

// checkIPURL answers with the caller's public IP in plain text.
const checkIPURL = "https://checkip.amazonaws.com"

// DetectCIDR finds the caller's public IPv4 address as a /32; detect nil
// asks checkip.amazonaws.com.
func DetectCIDR(detect func() (netip.Addr, error)) (string, error) {
	if detect == nil {
		detect = func() (netip.Addr, error) { return DetectPublicIP(context.Background(), checkIPURL) }
	}
	ip, err := detect()
	if err != nil {
		return "", Usagef("no --allow-cidr given and your public IP could not be detected (%v): pass --allow-cidr YOUR.IP/32", err)
	}
	if !ip.Is4() {
		return "", Usagef("no --allow-cidr given and your public IP %s is not IPv4: pass --allow-cidr", ip)
	}
	return netip.PrefixFrom(ip, 32).String(), nil
}

func DetectPublicIP(ctx context.Context, url string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return netip.Addr{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 100))
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(string(b)))
}

// nonPublic are the IPv4 ranges no packet from the internet comes from:
// private, shared (carrier NAT), loopback, link-local, "this network",
// multicast and reserved. Disjoint.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("224.0.0.0/3"),
}

// WidestAllowed is the longest public prefix let in without asking: a /24
// is an office; anything wider is a provider, a country, or the internet.
const WidestAllowed = 24

// WideOpening describes what cidrs open to when one of them is a public
// prefix wider than widestAllowed, else "".
func WideOpening(cidrs []string) string {
	var wide, all []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		all = append(all, p)
		if p.Bits() < WidestAllowed && publicAddrs([]netip.Prefix{p}) > 0 {
			wide = append(wide, p)
		}
	}
	if len(wide) == 0 {
		return ""
	}
	n := publicAddrs(all)
	if n == publicAddrs([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}) {
		return "the whole internet"
	}
	return fmt.Sprintf("%d public addresses (%s is wider than a /%d)", n, wide[0], WidestAllowed)
}

// publicAddrs counts the public IPv4 addresses in the union of ps.
func publicAddrs(ps []netip.Prefix) uint64 {
	var outer []netip.Prefix // prefixes nest or are disjoint: keep the outermost
	for _, p := range ps {
		inside := false
		for _, q := range ps {
			if q.Bits() < p.Bits() && q.Contains(p.Addr()) {
				inside = true
			}
		}
		if !inside && !slices.Contains(outer, p) {
			outer = append(outer, p)
		}
	}
	var n uint64
	for _, p := range outer {
		size := uint64(1) << (32 - p.Bits())
		for _, np := range nonPublic {
			switch {
			case np.Bits() <= p.Bits() && np.Contains(p.Addr()):
				size = 0
			case p.Bits() < np.Bits() && p.Contains(np.Addr()):
				size -= uint64(1) << (32 - np.Bits())
			}
		}
		n += size
	}
	return n
}

// NonPublicCIDRs are the cidrs that hold no public address: traffic from
// the internet to the server's public address never comes from them.
func NonPublicCIDRs(cidrs []string) []string {
	var out []string
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && publicAddrs([]netip.Prefix{p}) == 0 {
			out = append(out, c)
		}
	}
	return out
}
