package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/synbatch/synbatch/export"
	"github.com/synbatch/synbatch/pipeline"
	"github.com/synbatch/synbatch/synapse"
)

func exportRoomsCommand(ctx context.Context, stdout, stderr io.Writer) *cli.Command {
	flags := append(append(connFlags(), poolFlags()...), outFlags()...)
	flags = append(flags, outputFlag(),
		&cli.StringFlag{Name: "search", Usage: "only rooms whose name, alias localpart or room id contains `TEXT`"},
		&cli.BoolFlag{Name: "members", Usage: "add each room's joined members (a request per room)"},
	)
	return &cli.Command{
		Name:  "rooms",
		Usage: "write the room list with each room's details and block status",
		Description: "Pages through the Admin API's room list (by name) and writes one row per room: name, canonical\n" +
			"alias, members and local members, creator, version, encryption, federation, public, join rules,\n" +
			"guest access, history visibility, state events, room type, and whether (and by whom) it is\n" +
			"blocked; --members adds the joined members. Cells a spreadsheet could take for a formula get a\n" +
			"leading ' (read back as written).",
		Flags: flags,
		Action: func(c *cli.Context) error {
			o, err := exportRoomsOptionsFrom(c, stderr)
			if err != nil {
				return err
			}
			return runExportRooms(ctx, o, stdout, stderr)
		},
	}
}

// exportRoomsOptions are export rooms' flags.
type exportRoomsOptions struct {
	tableOptions
	filter  synapse.RoomFilter
	members bool
}

func exportRoomsOptionsFrom(c *cli.Context, stderr io.Writer) (exportRoomsOptions, error) {
	to, err := tableOptionsFrom(c, stderr, "rooms")
	if err != nil {
		return exportRoomsOptions{}, err
	}
	return exportRoomsOptions{tableOptions: to, filter: synapse.RoomFilter{Search: c.String("search")}, members: c.Bool("members")}, nil
}

func runExportRooms(ctx context.Context, o exportRoomsOptions, stdout, stderr io.Writer) error {
	defer o.conn.close(ctx, stderr)
	client, err := o.connect(ctx, stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, "export rooms")
	prog.Start(-1, nil)
	res, err := export.Rooms(ctx, client, export.RoomsConfig{Out: o.out, Format: o.format, Stdout: stdout,
		Filter: o.filter, Members: o.members, Concurrency: o.concurrency, MaxConcurrency: o.maxConcurrency, Progress: prog.Add})
	prog.Finish()
	if err != nil {
		return fmt.Errorf("%w: export rooms: %w", pipeline.ErrStopped, err)
	}
	if o.asJSON {
		return writeJSON(stdout, exportSummary{Exported: "rooms", Count: res.Rooms, Out: o.out})
	}
	if o.out != "-" {
		fmt.Fprintf(stderr, "exported %d rooms to %s\n", res.Rooms, o.out)
	}
	return nil
}
