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
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
        "triggers": #"""
        OVERVIEW: Drift triggers: when enough of the selected devices drift, a domain
        and its campaign are created over them.

        USAGE: fleetadapt triggers <subcommand>

        OPTIONS:
          --version               Show the version.
          -h, --help              Show help information.

        SUBCOMMANDS:
          list                    List triggers by id.
          get                     Show one trigger: whether its condition holds and
                                  when it last fired.
          create                  Create a drift trigger over the selected devices.
          patch                   Change a trigger's name, selector, condition or
                                  cooldown.
          enable                  Enable a trigger: it is evaluated again.
          disable                 Disable a trigger: it is not evaluated until enabled.
          delete                  Delete a trigger; the domains it created keep their
                                  origin.

          See 'fleetadapt help triggers <subcommand>' for detailed help.

        """#,
        "triggers create": #"""
        OVERVIEW: Create a drift trigger over the selected devices.

        Give the trigger with flags, or as the JSON body of POST /v1/triggers with
        --file (abort rule, gate: see docs/api.md). When the condition holds, the
        trigger posts a domain over the drifting devices with the job and rollout given
        here, at most once per --cooldown-s.

        USAGE: fleetadapt triggers create <options>

        OPTIONS:
          --file <file>           A JSON file with the whole request (`-` reads
                                  standard input); the other trigger flags are then not
                                  allowed.
          --name <name>           The trigger's name, e.g. fog-watch.
          --description <description>
                                  What the trigger is for.
          --labels <labels>       Watch the devices with all these labels, e.g.
                                  site=berlin.
          --devices <devices>     Watch these devices, comma-separated ids.
          --metric <metric>       What drifts: entropy_rise (prediction entropy above
                                  its baseline) or confidence_drop. (values:
                                  entropy_rise, confidence_drop)
          --threshold <threshold> How far beyond its baseline a device must be (at most
                                  50 for entropy_rise, 1 for confidence_drop).
          --min-devices <min-devices>
                                  Fire when at least this many selected devices drift
                                  (default 1).
          --min-pct <min-pct>     Fire when at least this per cent of the selected
                                  devices drift (instead of --min-devices).
          --for-s <for-s>         Seconds the condition must hold before the trigger
                                  fires (default 0).
          --cooldown-s <cooldown-s>
                                  Seconds after a firing during which the trigger does
                                  not fire again (default 3600).
          --model <model>         The model the domain adapts (default: the one most
                                  drifting devices run).
          --kind <kind>           What the jobs do: adapt (train adapters) or profile
                                  (measure every variant). (default: adapt)
          --loss <loss>           Adaptation loss: tent, shot-im, eata or bn-stats.
                                  (default: shot-im)
          --steps <steps>         Training steps per job. (default: 40)
          --job-timeout <job-timeout>
                                  Seconds a job may run before it is retried. (default:
                                  600)
          --max-attempts <max-attempts>
                                  Attempts per job. (default: 3)
          --canary-pct <canary-pct>
                                  Per cent of the devices in the canary wave.
          --wave-size-pct <wave-size-pct>
                                  Per cent of the devices in each later wave.
          --success-threshold-pct <success-threshold-pct>
                                  Per cent of a wave's jobs that must succeed before
                                  the next is released.
          --disabled              Create it disabled: it is not evaluated until
                                  `fleetadapt triggers enable`.
          --idempotency-key <idempotency-key>
                                  Idempotency-Key of the request (default: a new one).
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
        "triggers patch": #"""
        OVERVIEW: Change a trigger's name, selector, condition or cooldown.

        Condition flags change only what they name (--min-devices replaces --min-pct
        and the other way round); --labels or --devices replaces the selector. --file
        sends a JSON body of PATCH /v1/triggers/{id} as it is. The change is sent with
        If-Match like `fleetadapt devices patch`.

        USAGE: fleetadapt triggers patch [<options>] <id>

        ARGUMENTS:
          <id>                    The trigger's id.

        OPTIONS:
          --file <file>           A JSON file with the whole patch (`-` reads standard
                                  input); the other trigger flags are then not allowed.
          --name <name>           The new name.
          --description <description>
                                  The new description.
          --labels <labels>       Watch the devices with all these labels instead.
          --devices <devices>     Watch these devices instead, comma-separated ids.
          --metric <metric>       What drifts: entropy_rise (prediction entropy above
                                  its baseline) or confidence_drop. (values:
                                  entropy_rise, confidence_drop)
          --threshold <threshold> How far beyond its baseline a device must be (at most
                                  50 for entropy_rise, 1 for confidence_drop).
          --min-devices <min-devices>
                                  Fire when at least this many selected devices drift
                                  (default 1).
          --min-pct <min-pct>     Fire when at least this per cent of the selected
                                  devices drift (instead of --min-devices).
          --for-s <for-s>         Seconds the condition must hold before the trigger
                                  fires (default 0).
          --cooldown-s <cooldown-s>
                                  The new cooldown in seconds.
          --if-match <if-match>   Only change the trigger if its ETag is still this,
                                  e.g. '"v3"' (default: the version read just before).
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
        "campaigns rollback": #"""
        OVERVIEW: Give every device the campaign changed its previous config and
        adapters back; the campaign ends rolled_back.

        Jobs not yet leased are canceled, and results of leased ones are refused. Each
        device gets a restore job that puts its previous adapters back; the rollback
        ends when those jobs end, or, for a device offline past the coordinator's
        restore deadline, without it (its job stays queued and runs when it returns). A
        canceled campaign can be rolled back too (what its finished waves changed).
        Repeating it answers the current figures, changes no config and queues failed
        restore jobs again.

        USAGE: fleetadapt campaigns rollback <id> [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        ARGUMENTS:
          <id>                    The campaign's id.

        OPTIONS:
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
        "campaigns cancel-job": #"""
        OVERVIEW: Cancel one device's job of a campaign; the rest of the campaign goes
        on.

        A queued or retrying job is canceled at once; a leased one is fenced (the
        device's result is refused). It counts against the wave's success threshold
        like a failure. A job that already ended exits 4.

        USAGE: fleetadapt campaigns cancel-job <id> <job> [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        ARGUMENTS:
          <id>                    The campaign's id.
          <job>                   The job's id (campaigns jobs lists them).

        OPTIONS:
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
        "releases rollback": #"""
        OVERVIEW: Give every device the release moved its previous config (and model)
        back; the release ends rolled_back.

        Each device gets a restore job that puts its previous adapters back; a device
        offline past the coordinator's restore deadline does not hold the rollback open
        (its job stays queued and runs when it returns). A canceled release can be
        rolled back too (what its finished waves changed). Repeating it answers the
        current figures, changes no config and queues failed restore jobs again.

        USAGE: fleetadapt releases rollback <id> [--output <output>] [--coordinator <coordinator>] [--key-file <key-file>] [--ca-file <ca-file>]

        ARGUMENTS:
          <id>                    The release's id.

        OPTIONS:
          -o, --output <output>   Output format: wide adds columns, json is the
                                  coordinator's answer as sent, yaml the same document
                                  as YAML, id only the ids. (values: table, wide, json,
                                  yaml, id; default: table)
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
