// Evaluate a Job DSL script as plain Groovy and print, as JSON, the calls it makes, as a tree.
//
//   JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 groovy tests/jenkins/run_jobdsl.groovy SCRIPT_FILE
//
// Jenkins and the job-dsl plugin cannot run on the test machines (TESTBED.md "Browser, load, Jenkins"),
// but a Job DSL script is Groovy: every method it calls (pipelineJob, parameters, choiceParam, ...) is
// recorded here with its arguments, and a closure argument is evaluated in turn, its calls nested under
// the call that received it. The script's real text is evaluated, so what it declares is what Groovy
// reads, not what a regex would guess. Which methods the job-dsl plugin knows is not checked here: the
// tests compare the tree with the Jenkinsfile's declarations.
//
// Output on stdout: one JSON list of calls, each {"name", "args", "block"} ("block": the calls made
// inside its closure, or null). Exit 1 when the script does not evaluate, 2 on a bad command line.

import groovy.json.JsonOutput

class Recorder {
    final List<Map> calls = []

    static Object plain(Object value) {
        if (value == null || value instanceof Number || value instanceof Boolean) {
            return value
        }
        if (value instanceof Map) {
            return value.collectEntries { k, v -> [(k.toString()): plain(v)] }
        }
        if (value instanceof Collection || value instanceof Object[]) {
            return value.collect { plain(it) }
        }
        return value.toString()
    }

    Object methodMissing(String name, Object argsObject) {
        Object[] args = argsObject as Object[]
        Map call = [name: name, args: [], block: null]
        args.each { Object arg ->
            if (arg instanceof Closure) {
                Recorder inner = new Recorder()
                Closure body = (Closure) arg.clone()
                body.delegate = inner
                body.resolveStrategy = Closure.DELEGATE_ONLY
                body.call()
                call.block = inner.calls
            } else {
                call.args << plain(arg)
            }
        }
        calls << call
        return null
    }
}

if (args.length != 1 || !new File(args[0]).isFile()) {
    System.err.println('usage: groovy run_jobdsl.groovy SCRIPT_FILE')
    System.exit(2)
}
String text = new File(args[0]).getText('UTF-8')
Recorder top = new Recorder()
try {
    Closure script = (Closure) new GroovyShell().evaluate("{ ->\n${text}\n}")
    script.delegate = top
    script.resolveStrategy = Closure.DELEGATE_ONLY
    script.call()
} catch (Exception e) {
    System.err.println("run_jobdsl.groovy: the script does not evaluate: ${e}")
    System.exit(1)
}
println(JsonOutput.toJson(top.calls))
