package main

import "github.com/gocable/gocable/cable/runner"

func main() { runner.Main(runner.Options{}) }
