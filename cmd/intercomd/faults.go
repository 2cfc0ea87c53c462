//go:build faults

package main

// envFaults reads the test fault hooks from the environment: only a build
// with the faults tag has them (the packaged-service test builds its .deb
// so, the media benchmark its daemon).
//
//	INTERCOMD_FAULT=wedge-loop  the event loop stops serving 3 s after READY
//	INTERCOMD_LOOPBACK_MEDIA=1  media offers loopback candidates only
func envFaults(getenv func(string) string) faults {
	return faults{
		wedgeLoop:     getenv("INTERCOMD_FAULT") == "wedge-loop",
		loopbackMedia: getenv("INTERCOMD_LOOPBACK_MEDIA") != "",
	}
}
