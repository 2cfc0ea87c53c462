//go:build js && wasm

// Command wasm is the calling core for the phone web app: package calling
// compiled to WebAssembly behind package bridge. It defines one global
// function, intercomdCalling(configJSON), returning a machine object with
// step(nowMS, inputJSON) -> resultJSON (see package bridge for the
// encodings; invalid arguments return an Error object), then waits forever so the page can keep calling it.
//
// Build: GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' (the web
// bundle generator does this, cmd web/internal/webgen).
package main

import (
	"encoding/json"
	"syscall/js"

	"github.com/intercomd/intercomd/web/bridge"
)

func main() {
	js.Global().Set("intercomdCalling", js.FuncOf(newMachine))
	select {}
}

// newMachine(configJSON) returns {step(nowMS, inputJSON)}, or an Error
// object (not thrown) when the configuration is invalid.
func newMachine(_ js.Value, args []js.Value) any {
	if len(args) != 1 || args[0].Type() != js.TypeString {
		return throw("intercomdCalling(configJSON): one string argument")
	}
	var cfg bridge.Config
	if err := json.Unmarshal([]byte(args[0].String()), &cfg); err != nil {
		return throw("intercomdCalling: " + err.Error())
	}
	b, err := bridge.New(cfg)
	if err != nil {
		return throw(err.Error())
	}
	step := js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) != 2 || args[0].Type() != js.TypeNumber || args[1].Type() != js.TypeString {
			return throw("step(nowMS, inputJSON): a number and a string")
		}
		return string(b.Step(int64(args[0].Float()), []byte(args[1].String())))
	})
	return js.ValueOf(map[string]any{"step": step})
}

func throw(msg string) any {
	return js.Global().Get("Error").New(msg)
}
