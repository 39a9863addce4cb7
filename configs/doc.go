// Package configs is the configuration schema of veild: the Config struct
// with its YAML keys, units and defaults, strict decoding, and Validate.
//
//	veil.yaml --Load/Parse--> strict yaml.v3 decode --> setDefaults --> Validate --> *Config
//	             (unknown key, bad type, 2nd document:  (zero value =   (every problem,
//	              ErrDecode, with line number)           default)       errors.Join, ErrInvalid)
//
// The package owns the file format only. veil.example.yaml in this folder
// documents every key with its unit and default; veil.yaml is a working
// loopback setup.
//
// # Zero values and defaults
//
// Defaults live in one place (setDefaults). A zero value in the file, or a
// key left out, means the default, so `window: 0` is the same as no window
// key. Default returns exactly what an empty file yields. Validate checks a
// Config as it is and does not apply defaults: a Config built in code should
// start from Default, and a Carrier appended in code must have its transport,
// number_format, window and bind_type set.
//
// # Secrets
//
// The file never holds a secret. It names environment variables (admin
// token_env, carriers smpp password_env); Admin.Token and CarrierSMPP.Password
// read them on each call. Config and its parts are therefore safe to print
// and log.
//
// # Imports
//
// configs is a leaf: it imports the standard library and go.yaml.in/yaml/v3
// only, never another veil package, so every package may import it.
//
// # Concurrency
//
// A *Config is plain data. Once Load or Parse returns it, treat it as
// read-only; it is then safe for concurrent use. A reload parses a new
// *Config rather than mutating the live one.
package configs
