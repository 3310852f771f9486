/*
 * Moves partition leadership on purpose, the way an operator does: reassigns
 * each named partition to the replica list given (the same brokers in another
 * order is enough: the first one becomes the preferred leader, and no data
 * moves), waits until the reassignment is done, elects the preferred leaders
 * (trying again while a preferred replica is not in sync yet, e.g. a broker
 * that has just come back), and waits until every partition is led by the
 * first broker of its list. What kafka-reassign-partitions.sh --execute and
 * kafka-leader-election.sh --election-type PREFERRED do, with the Admin
 * client of kafka-clients alone: the jars scripts/services.sh fetches have no
 * kafka-tools, and kafkajs has no ElectLeaders request.
 *
 * Run in Java's source-file mode with the Kafka jars of scripts/services.sh
 * (the Admin API used here is the same in Kafka 3.x and 4.x):
 *
 *     java -cp '.services/kafka/lib/3.9.1/*' scripts/kafka/PreferLeaders.java \
 *       127.0.0.1:19192,127.0.0.1:19193 TOPIC 0=2,1,3 1=3,2,1
 *
 * Prints one line per partition, "partition 0 leader 2 replicas 2,1,3 isr
 * 2,1,3", and exits 0; exits 1 with the reason on stderr when the move is
 * not complete within 90 s; exits 2 on bad arguments.
 */

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.PreferredLeaderNotAvailableException;

public class PreferLeaders {
  private static final long TIMEOUT_MS = 90_000;

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("Usage: PreferLeaders BOOTSTRAP TOPIC PARTITION=BROKER,BROKER,... ...");
      System.exit(2);
    }
    String topic = args[1];
    Map<Integer, List<Integer>> wanted = new TreeMap<>();
    for (int i = 2; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      if (kv.length != 2) {
        System.err.println("Cannot read \"" + args[i] + "\": expected PARTITION=BROKER,BROKER,...");
        System.exit(2);
      }
      List<Integer> replicas = new ArrayList<>();
      for (String id : kv[1].split(",")) replicas.add(Integer.parseInt(id.trim()));
      wanted.put(Integer.parseInt(kv[0].trim()), replicas);
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.CLIENT_ID_CONFIG, "sluice-prefer-leaders");
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
    long deadline = System.currentTimeMillis() + TIMEOUT_MS;
    try (Admin admin = Admin.create(props)) {
      Map<TopicPartition, Optional<NewPartitionReassignment>> moves = new HashMap<>();
      wanted.forEach((p, replicas) -> moves.put(
          new TopicPartition(topic, p), Optional.of(new NewPartitionReassignment(replicas))));
      admin.alterPartitionReassignments(moves).all().get();
      Set<TopicPartition> partitions = moves.keySet();
      // Same brokers, other order: done at once; other brokers: once they caught up.
      while (!admin.listPartitionReassignments(partitions).reassignments().get().isEmpty()) {
        pause(deadline, "the reassignment of " + partitions + " is still in progress");
      }
      for (;;) {
        Map<TopicPartition, Optional<Throwable>> results =
            admin.electLeaders(ElectionType.PREFERRED, partitions).partitions().get();
        List<String> waiting = new ArrayList<>();
        for (Map.Entry<TopicPartition, Optional<Throwable>> e : results.entrySet()) {
          Optional<Throwable> error = e.getValue();
          if (error.isEmpty() || error.get() instanceof ElectionNotNeededException) continue;
          if (!(error.get() instanceof PreferredLeaderNotAvailableException)) {
            throw new IllegalStateException("Cannot elect the preferred leader of " + e.getKey()
                + ": " + error.get());
          }
          waiting.add(e.getKey() + " (" + error.get().getMessage() + ")");
        }
        if (waiting.isEmpty()) break;
        pause(deadline, "no preferred leader could be elected for " + waiting);
      }
      for (;;) {
        TopicDescription description =
            admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        List<String> lines = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        for (TopicPartitionInfo info : description.partitions()) {
          List<Integer> replicas = ids(info.replicas());
          int leader = info.leader() == null ? -1 : info.leader().id();
          String line = "partition " + info.partition() + " leader " + leader + " replicas "
              + join(replicas) + " isr " + join(ids(info.isr()));
          lines.add(line);
          List<Integer> want = wanted.get(info.partition());
          if (want != null && (!want.equals(replicas) || leader != want.get(0))) wrong.add(line);
        }
        if (wrong.isEmpty()) {
          lines.forEach(System.out::println);
          return;
        }
        pause(deadline, "the leaders are not the preferred ones yet: " + wrong);
      }
    } catch (ExecutionException e) {
      System.err.println("Cannot move the leaders of " + topic + ": " + e.getCause());
      System.exit(1);
    } catch (IllegalStateException e) {
      System.err.println(e.getMessage());
      System.exit(1);
    }
  }

  /** Waits a moment before the next look, or gives up at the deadline saying why. */
  private static void pause(long deadline, String why) throws InterruptedException {
    if (System.currentTimeMillis() > deadline) {
      throw new IllegalStateException("Cannot move the leaders within "
          + TIMEOUT_MS / 1000 + " s: " + why);
    }
    Thread.sleep(250);
  }

  private static List<Integer> ids(List<Node> nodes) {
    return nodes.stream().map(Node::id).collect(Collectors.toList());
  }

  private static String join(List<Integer> ids) {
    return ids.stream().map(String::valueOf).collect(Collectors.joining(","));
  }
}
