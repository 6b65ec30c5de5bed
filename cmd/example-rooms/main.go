// Command example-rooms is the README's porting guide as a program: a Rails
// app's RoomChannel and NotificationsChannel ported to Go (rooms.go), in a
// binary of the app's own that has every flag, environment variable and
// cable.yml setting of gocable. Run it as gocable is run:
//
//	SECRET_KEY_BASE=... example-rooms --cable-config config/cable.yml --env production \
//		--identify current_user=encrypted:user_id@User --gid-app myapp
package main

import (
	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/runner"
)

func main() {
	db := openDB()
	runner.Main(runner.Options{Channels: map[string]func() cable.Channel{
		"RoomChannel":          func() cable.Channel { return &RoomChannel{db: db} },
		"NotificationsChannel": func() cable.Channel { return &NotificationsChannel{} },
	}})
}
