FROM ubuntu
{"not": "an instruction"}
