/// `fleetadapt <command> --help` at 80 columns (AdminCLITests.helpAtEightyColumns).
enum AdminHelpGoldens {
    static let all: [String: String] = [
        "devices": #"""
        OVERVIEW: List, register, change and decommission devices.

        USAGE: fleetadapt devices <subcommand>

        OPTIONS:
          --version               Show the version.
          -h, --help              Show help information.

        SUBCOMMANDS:
          list                    List devices, oldest first.
          get                     Show one device.
          register                Register a device; prints its token once.
          patch                   Change a device's name or labels.
          rotate-token            Give a device a new token (printed once); the old one
                                  stops working at once.
          config                  Show a device's current config: its planned
                                  combination and why.
          decommission, delete    Decommission a device (DELETE): its token stops
                                  working; its history stays.

          See 'fleetadapt help devices <subcommand>' for detailed help.

        """#,
        "devices list": #"""
        OVERVIEW: List devices, oldest first.

        USAGE: fleetadapt devices list [--labels <labels>] [--status <status>] [--limit <limit>] [--all] [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        OPTIONS:
          --labels <labels>       Only devices with all these labels, e.g.
                                  site=berlin,tier=cam.
          --status <status>       Only devices in this status. (values: active,
                                  decommissioned)
          --limit <limit>         Show at most this many items (pages of up to 500 are
                                  fetched until there are enough).
          --all                   Fetch every page.
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML. (values: table, wide, json, yaml; default:
                                  table)
          --coordinator <coordinator>
                                  The coordinator's URL, e.g.
                                  https://coordinator.example:8443 (also
                                  FLEETADAPT_URL; default: the one `fleetadapt login`
                                  saved).
          --key-file <key-file>   A file holding the API key (default: FLEETADAPT_KEY,
                                  then the key `fleetadapt login` saved).
          --ca-file <ca-file>     PEM file of the certificate authorities that sign the
                                  coordinator's certificate, for a private CA (default:
                                  the system's, or the one `fleetadapt login` saved).
          --version               Show the version.
          -h, --help              Show help information.


        """#,
        "devices patch": #"""
        OVERVIEW: Change a device's name or labels.

        The change is sent with If-Match: the device's version as read just before (or
        --if-match), so a device changed in between is refused (exit 4) rather than
        overwritten. --labels replaces the whole label set.

        USAGE: fleetadapt devices patch <id> [--name <name>] [--labels <labels>] [--if-match <if-match>] [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        ARGUMENTS:
          <id>                    The device's id.

        OPTIONS:
          --name <name>           The new name.
          --labels <labels>       The new labels (all of them), e.g.
                                  site=berlin,tier=cam.
          --if-match <if-match>   Only change the device if its ETag is still this,
                                  e.g. '"v3"' (default: the version read just before).
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML. (values: table, wide, json, yaml; default:
                                  table)
          --coordinator <coordinator>
                                  The coordinator's URL, e.g.
                                  https://coordinator.example:8443 (also
                                  FLEETADAPT_URL; default: the one `fleetadapt login`
                                  saved).
          --key-file <key-file>   A file holding the API key (default: FLEETADAPT_KEY,
                                  then the key `fleetadapt login` saved).
          --ca-file <ca-file>     PEM file of the certificate authorities that sign the
                                  coordinator's certificate, for a private CA (default:
                                  the system's, or the one `fleetadapt login` saved).
          --version               Show the version.
          -h, --help              Show help information.


        """#,
        "campaigns watch": #"""
        OVERVIEW: Follow a campaign to its end with a progress bar per wave, then show
        every device's result.

        Exits 0 when the campaign completes and 2 when it is aborted or canceled; a
        paused campaign is followed until it is resumed or canceled. Progress goes to
        standard error (redrawn in place on a terminal, a line per change otherwise),
        the closing table to standard output.

        USAGE: fleetadapt campaigns watch <id> [--interval <interval>] [--timeout <timeout>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        ARGUMENTS:
          <id>                    The campaign's id.

        OPTIONS:
          --interval <interval>   Seconds between two reads of the campaign. (default:
                                  2.0)
          --timeout <timeout>     Give up watching after this many seconds (exit 1); 0
                                  watches until the campaign ends. (default: 0.0)
          --coordinator <coordinator>
                                  The coordinator's URL, e.g.
                                  https://coordinator.example:8443 (also
                                  FLEETADAPT_URL; default: the one `fleetadapt login`
                                  saved).
          --key-file <key-file>   A file holding the API key (default: FLEETADAPT_KEY,
                                  then the key `fleetadapt login` saved).
          --ca-file <ca-file>     PEM file of the certificate authorities that sign the
                                  coordinator's certificate, for a private CA (default:
                                  the system's, or the one `fleetadapt login` saved).
          --version               Show the version.
          -h, --help              Show help information.


        """#,
        "login": #"""
        OVERVIEW: Save the coordinator's URL and the API key for the admin commands.

        The key is read from --key-file (the config then records the file's path, not
        the key), else from FLEETADAPT_KEY, else from the first line of standard input
        (the config then holds the key itself). The key is checked against the
        coordinator before anything is saved. The config is
        $XDG_CONFIG_HOME/fleetadapt/config.json (default
        ~/.config/fleetadapt/config.json), mode 0600; the key is never printed.

        USAGE: fleetadapt login --coordinator <coordinator> [--key-file <key-file>] [--ca-file <ca-file>]

        OPTIONS:
          --coordinator <coordinator>
                                  The coordinator's URL, e.g.
                                  https://coordinator.example:8443.
          --key-file <key-file>   A file holding the API key; the config records its
                                  path.
          --ca-file <ca-file>     PEM file of the certificate authorities that sign the
                                  coordinator's certificate, for a private CA.
          --version               Show the version.
          -h, --help              Show help information.


        """#,
        "keys create": #"""
        OVERVIEW: Create an API key; its secret is printed only this once (or written
        to --secret-file).

        USAGE: fleetadapt keys create --name <name> --role <role> [--expires-at <expires-at>] [--secret-file <secret-file>] [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        OPTIONS:
          --name <name>           What the key is for, e.g. ci.
          --role <role>           Its role. (values: viewer, operator, admin)
          --expires-at <expires-at>
                                  When it stops working (RFC 3339, e.g.
                                  2027-06-30T00:00:00Z); default: never.
          --secret-file <secret-file>
                                  Write the secret the answer carries (shown only this
                                  once) to this new file (mode 0600) instead of
                                  printing it.
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML. (values: table, wide, json, yaml; default:
                                  table)
          --coordinator <coordinator>
                                  The coordinator's URL, e.g.
                                  https://coordinator.example:8443 (also
                                  FLEETADAPT_URL; default: the one `fleetadapt login`
                                  saved).
          --key-file <key-file>   A file holding the API key (default: FLEETADAPT_KEY,
                                  then the key `fleetadapt login` saved).
          --ca-file <ca-file>     PEM file of the certificate authorities that sign the
                                  coordinator's certificate, for a private CA (default:
                                  the system's, or the one `fleetadapt login` saved).
          --version               Show the version.
          -h, --help              Show help information.


        """#,
    ]
}
