import { isTransientKafkaError } from "../../lib/kafka.ts";
import { assertEquals } from "../_assert.ts";

Deno.test("isTransientKafkaError() waits out a broker coming back and ends sluice on credentials", () => {
  const coordinator = Object.assign(new Error("Failed to find group coordinator"), {
    name: "KafkaJSNonRetriableError",
    cause: Object.assign(new Error("There is no coordinator"), {
      name: "KafkaJSGroupCoordinatorNotFound",
    }),
  });
  assertEquals(isTransientKafkaError(coordinator), true);
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9092"), {
      name: "KafkaJSConnectionError",
    })),
    true,
  );
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("SASL SCRAM SHA256 authentication failed"), {
      name: "KafkaJSSASLAuthenticationError",
    })),
    false,
  );
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("Not authorized to access topics"), {
      name: "KafkaJSProtocolError",
      type: "TOPIC_AUTHORIZATION_FAILED",
      retriable: false,
    })),
    false,
  );
});
