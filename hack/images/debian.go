package main

import "errors"

func (b *builder) postgres() error { return errors.New("not implemented yet") }
func (b *builder) redis() error    { return errors.New("not implemented yet") }
