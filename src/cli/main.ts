#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ROLES, type Role } from '../config/schema-topology.ts';
import { ClawmeshError } from '../core/errors.ts';
import { VERSION } from './version.ts';

const HELP = `clawmesh ${VERSION}: an AI-agent platform for messaging channels

Usage:
  clawmesh start [ROLE...] [--config FILE]       run every service in one process (port from PORT or the config, default 8080),
                                                 or only the roles named: gateway, conversation, skills, models
  clawmesh start skills --skills a,b             a skill host serving the named skills
  clawmesh chat [--url URL] [--user ID] [-m TEXT] chat with a running server, or in-process when none answers
  clawmesh doctor [--config FILE] [--json]       validate the config and check its dependencies
  clawmesh pairing approve|list|revoke ...       DM pairing: approve <channel> <code>, list [channel], revoke <channel> <user>
  clawmesh status [--config FILE] [--transport nats|http] [--nats-url URL] [--subject-prefix P] [--json]
                                                 the running service instances and their stats (NATS), or health (http)
  clawmesh --version | --help

Options:
  -c, --config FILE   the config file (default: CLAWMESH_CONFIG, then ./clawmesh.config.yaml if present)
  --url URL           chat: the server to talk to (default http://127.0.0.1:$PORT)
  --user ID           chat: your user id (default: cli-user)
  --agent ID          chat: the agent to talk to
  --conversation ID   chat: continue this conversation
  -m, --message TEXT  chat: send one message, print the reply and exit
  --local             chat: run in-process even when a server answers
  --skills a,b        start: the skills a skills role serves (default: skills.load of the config)
`;

async function main(argv: string[]): Promise<number> {
  // `status` reads its own options (--transport, --help with its own usage): the strict parse
  // below knows only the other commands' and refused `clawmesh status --transport http`.
  if (argv[0] === 'status') return (await import('./status.ts')).runStatus(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      url: { type: 'string' },
      user: { type: 'string' },
      agent: { type: 'string' },
      conversation: { type: 'string' },
      message: { type: 'string', short: 'm' },
      local: { type: 'boolean' },
      skills: { type: 'string' },
      transport: { type: 'string' },
      'nats-url': { type: 'string' },
      'subject-prefix': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const configFile = values.config;
  if ((command === 'doctor' || command === 'chat') && rest.length > 0) {
    process.stderr.write(
      `clawmesh: ${command} takes no arguments, got "${rest.join(' ')}" (options start with --)\nRun clawmesh --help for the options.\n`,
    );
    return 2;
  }
  switch (command) {
    case 'start':
      // Each command loads only its own code: `start` never pays for the NATS client of `status`.
      return (await import('./start.ts')).runStart({
        configFile,
        roles: parseRoles(rest),
        skills: values.skills,
      });
    case 'chat':
      return (await import('./chat.ts')).runChat({
        configFile,
        url: values.url,
        user: values.user,
        agent: values.agent,
        conversation: values.conversation,
        message: values.message,
        local: values.local ?? false,
      });
    case 'doctor':
      return (await import('./doctor.ts')).runDoctor({ configFile, json: values.json ?? false });
    case 'pairing':
      return (await import('./pairing.ts')).runPairing(rest, { configFile });
    case 'status':
      return (await import('./status.ts')).runStatus(
        argv.filter((_arg, index) => index !== argv.indexOf(command)),
      );
    default:
      process.stderr.write(`clawmesh: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

// Every command exits once it is done, whatever sockets or timers libraries left behind: a
// server that has stopped, and a check whose NATS connection timed out (nats.js keeps such a
// socket open, which had left doctor and status hanging after printing their result).
// Writes to stdout and stderr are synchronous on pipes, files and terminals here (Linux).
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message =
      err instanceof ClawmeshError || (err instanceof Error && 'code' in err) ? err.message : String(err);
    // A mistyped option is a usage error like an unknown command (exit 2): restarting the same
    // command line cannot mend it, and a service manager told not to restart on 2 stops there.
    const usage =
      err instanceof Error && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`clawmesh: ${message}${usage ? '\nRun clawmesh --help for the options.' : ''}\n`);
    process.exit(usage || (err instanceof ClawmeshError && err.code === 'INVALID_ARGUMENT') ? 2 : 1);
  },
);

/** The roles named after `start`; none means every role (the monolith). */
function parseRoles(names: string[]): Role[] | undefined {
  if (names.length === 0) return undefined;
  const roles = names
    .flatMap((name) => name.split(','))
    .map((name) => name.trim())
    .filter(Boolean);
  for (const role of roles) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown role "${role}" (roles: ${ROLES.join(', ')}); "clawmesh start" alone runs them all`,
      );
    }
  }
  return [...new Set(roles)] as Role[];
}
