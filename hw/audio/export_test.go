package audio

// TonePackets lets the package's external tests encode test tones as its
// internal tests do.
var TonePackets = tonePackets
