/**
 * The scripted fake server lives in @pgline/testing (FakeServer.ts); the client's tests import it
 * from here for brevity.
 */
export {
  acceptStartup,
  dataRow,
  type FakeConnection,
  type FakeScript,
  type FakeServer,
  fakeServer,
  scriptedServer
} from "@pgline/testing"
