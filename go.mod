module github.com/spillway-rt/spillway

go 1.26.0

require (
	github.com/google/gopacket v1.1.19
	github.com/klauspost/reedsolomon v1.14.2
	github.com/pion/rtcp v1.2.20
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.5
	golang.org/x/net v0.62.0
)

require (
	github.com/klauspost/cpuid/v2 v2.3.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
