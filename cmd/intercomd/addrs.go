package main

import (
	"net"
	"net/netip"
	"os"
	"strings"
)

// phoneURLs are the addresses a phone on the network can open the app at,
// for a server listening on addr: the host's LAN addresses and its
// mDNS name when it listens on every interface, or the one address it
// listens on.
func phoneURLs(addr string, ifaceAddrs []net.Addr, hostname string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	url := func(h string) string { return "https://" + net.JoinHostPort(h, port) + "/" }
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return []string{url(ip.String())}
	}
	var urls []string
	for _, a := range ifaceAddrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		// A phone reaches the device at its IPv4 LAN addresses; link-local
		// IPv6 needs a zone no browser takes.
		if ip.Is4() && ip.IsGlobalUnicast() {
			urls = append(urls, url(ip.String()))
		}
	}
	if h, _, _ := strings.Cut(hostname, "."); h != "" && h != "localhost" {
		urls = append(urls, url(h+".local"))
	}
	return urls
}

// localPhoneURLs is phoneURLs for this machine.
func localPhoneURLs(addr string) []string {
	ifaces, _ := net.InterfaceAddrs()
	host, _ := os.Hostname()
	return phoneURLs(addr, ifaces, host)
}
