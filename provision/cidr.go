package provision

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// parseCIDRs checks and normalises --allow-cidr values. A bare IP becomes a
// /32 (or /128); host bits set is an error because it is usually a typo.
func parseCIDRs(in []string) ([]string, error) {
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
				return nil, usagef("--allow-cidr %q is not a CIDR like 198.51.100.7/32", raw)
			}
		}
		if p.Addr().Zone() != "" {
			return nil, usagef("--allow-cidr %q: zoned addresses are not allowed", raw)
		}
		if p.Masked() != p {
			return nil, usagef("--allow-cidr %q has host bits set; did you mean %s?", raw, p.Masked())
		}
		if !p.Addr().Is4() {
			return nil, usagef("--allow-cidr %q: only IPv4 CIDRs are supported (the default VPC has no IPv6 route)", raw)
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

// detectCIDR finds the caller's public IPv4 address as a /32; detect nil
// asks checkip.amazonaws.com.
func detectCIDR(detect func() (netip.Addr, error)) (string, error) {
	if detect == nil {
		detect = func() (netip.Addr, error) { return detectPublicIP(context.Background(), checkIPURL) }
	}
	ip, err := detect()
	if err != nil {
		return "", usagef("no --allow-cidr given and your public IP could not be detected (%v): pass --allow-cidr YOUR.IP/32", err)
	}
	if !ip.Is4() {
		return "", usagef("no --allow-cidr given and your public IP %s is not IPv4: pass --allow-cidr", ip)
	}
	return netip.PrefixFrom(ip, 32).String(), nil
}

func detectPublicIP(ctx context.Context, url string) (netip.Addr, error) {
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
