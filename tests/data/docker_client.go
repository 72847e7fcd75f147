// Drives a docker credential helper through the reference client package of
// docker-credential-helpers (the code the docker CLI runs), for tests/integrations.rs.
//
//	docker_client HELPER get SERVER
//	docker_client HELPER store SERVER USERNAME SECRET
//	docker_client HELPER erase SERVER
//	docker_client HELPER list
//
// Prints one JSON object: what the client returned. The client turns a helper's "no credentials
// server URL" or "no credentials username" into its own error, whose text then shows after
// "err: " (instead of "exit status 1"), and "credentials not found in native keychain" into the
// error IsErrCredentialsNotFound recognises.
package main

import (
	"encoding/json"
	"os"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
)

type result struct {
	Creds    *credentials.Credentials `json:"creds,omitempty"`
	List     map[string]string        `json:"list,omitempty"`
	Err      string                   `json:"err,omitempty"`
	NotFound bool                     `json:"not_found"`
}

func main() {
	program := client.NewShellProgramFunc(os.Args[1])
	var r result
	var err error
	switch os.Args[2] {
	case "get":
		r.Creds, err = client.Get(program, os.Args[3])
	case "store":
		err = client.Store(program, &credentials.Credentials{
			ServerURL: os.Args[3], Username: os.Args[4], Secret: os.Args[5],
		})
	case "erase":
		err = client.Erase(program, os.Args[3])
	case "list":
		r.List, err = client.List(program)
	}
	if err != nil {
		r.Err = err.Error()
		r.NotFound = credentials.IsErrCredentialsNotFound(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}
