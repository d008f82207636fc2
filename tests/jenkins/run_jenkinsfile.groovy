// Run a declarative Jenkinsfile as a plain Groovy script and print, as JSON, what it would do.
//
//   JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 groovy tests/jenkins/run_jenkinsfile.groovy \
//       [--first-build | --param NAME=VALUE ...] Jenkinsfile
//
// Which build of the job to act as (the record's `mode`):
//   (no option)         a later build with the parameter defaults: params.NAME and env.NAME carry them;
//   --first-build       the job's first build: params.NAME carries each default, but Jenkins puts NO
//                       parameter into env (JENKINS-40574, JENKINS-41929), so "$NAME" is empty in sh;
//   --param NAME=VALUE  a build with parameters (repeatable): params.NAME and env.NAME carry VALUE,
//                       the others their defaults; an undeclared NAME or a value that is not one of
//                       a choice's choices exits 2, as Jenkins refuses it.
//
// Jenkins itself cannot run on the test machines (TESTBED.md "Browser, load, Jenkins"), but the
// Jenkinsfile is Groovy: each declarative directive and step name below is bound to a closure that
// records the call and runs the block it was given, so the file's real text is evaluated. The record
// shows the sh commands, the credentials bound around them, the report paths, the parameters.
// A step or directive that is not bound here fails the run (MissingMethodException): the tests then
// name it, so a new step is a conscious change (and its plugin goes into custom_jenkins/plugins.txt).
//
// Output on stdout: one JSON object. Diagnostics on stderr; exit 1 when the file does not evaluate,
// 2 on a bad command line.

import groovy.json.JsonOutput

// The delegate of an environment {} block: `NAME = value` is recorded; reading a name that was not
// assigned in the block (params, env, ...) resolves from the script's binding, as in Jenkins.
class EnvironmentBlock {
    private final Map<String, Object> assigned = [:]
    private final Binding binding

    EnvironmentBlock(Binding binding) {
        this.binding = binding
    }

    Map<String, Object> assignments() {
        return assigned
    }

    @Override
    Object getProperty(String name) {
        return assigned.containsKey(name) ? assigned[name] : binding.getVariable(name)
    }

    @Override
    void setProperty(String name, Object value) {
        assigned[name] = value
    }
}

def usage = { String problem ->
    System.err.println("run_jenkinsfile.groovy: ${problem}")
    System.err.println('usage: groovy run_jenkinsfile.groovy [--first-build | --param NAME=VALUE ...] PATH/TO/Jenkinsfile')
    System.exit(2)
}

boolean firstBuild = false
Map<String, String> given = [:]     // --param NAME=VALUE, in order
List<String> argv = args as List
if (!argv || argv[-1].startsWith('--')) {
    usage('the last argument must be the Jenkinsfile')
}
int at = 0
while (at < argv.size() - 1) {
    String arg = argv[at++]
    if (arg == '--first-build') {
        firstBuild = true
    } else if (arg == '--param') {
        String assignment = at < argv.size() - 1 ? argv[at++] : ''
        int eq = assignment.indexOf('=')
        String name = eq > 0 ? assignment.substring(0, eq) : ''
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) {
            usage("--param '${assignment}': not NAME=VALUE")
        }
        if (given.containsKey(name)) {
            usage("--param ${name} given twice")
        }
        given[name] = assignment.substring(eq + 1)
    } else {
        usage("unknown option ${arg} (options come before the Jenkinsfile)")
    }
}
if (firstBuild && given) {
    usage('--first-build and --param exclude each other: a first build takes no parameters')
}
File jenkinsfile = new File(argv[-1])
if (!jenkinsfile.isFile()) {
    usage("no such file: ${jenkinsfile}")
}
String mode = firstBuild ? 'first-build' : 'rebuild'

// What happened, in order. `steps` holds every call; the other keys are views the tests use.
Map record = [
    mode       : mode,
    steps      : [],
    sh         : [],
    credentials: [],
    junit      : [],
    archive    : [],
    html       : [],
    issues     : [],
    coverage   : [],
    parameters : [],
    params     : [:],
    environment: [:],
    options    : [],
    stages     : [],
]
List<String> context = []           // enclosing blocks, outermost first: pipeline, stages, stage:NAME, ...
List<Map> activeCredentials = []    // bindings of the enclosing withCredentials blocks
Map params = record.params          // `params.NAME` in the Jenkinsfile: the build's parameter values
Map env = [:]                       // `env.NAME`: environment {} values, parameters, bound credentials

// JSON-safe copy of step arguments: closures are not data, GStrings become strings.
def plain
plain = { Object value ->
    if (value == null || value instanceof Number || value instanceof Boolean) {
        return value
    }
    if (value instanceof Closure) {
        return '<block>'
    }
    if (value instanceof Map) {
        return value.collectEntries { k, v -> [(k.toString()): plain(v)] }
    }
    if (value instanceof Collection || value instanceof Object[]) {
        return value.collect { plain(it) }
    }
    return value.toString()
}

// A parameter declaration: params.NAME gets this build's value (--param, else the default); env.NAME
// too, except on a first build. `parse` turns a --param text into the parameter's type, or null.
def declare = { String name, Object defaultValue, Closure parse ->
    Object value = defaultValue
    if (given.containsKey(name)) {
        value = parse(given[name])
        if (value == null) {
            System.err.println("run_jenkinsfile.groovy: --param ${name}=${given[name]}: not a value of parameter ${name}")
            System.exit(2)
        }
    }
    params[name] = value
    if (!firstBuild) {
        env[name] = value.toString()
    }
}

def note = { String name, Object args ->
    Map entry = [step: name, args: plain(args), context: context.join('/')]
    record.steps << entry
    return entry
}

// A directive or block step: record it, then run its body inside it.
def block = { String name, Object args, Closure body ->
    note(name, args)
    context.push(name)
    try {
        body.call()
    } finally {
        context.pop()
    }
}

Binding binding = new Binding()
binding.setVariable('params', params)
binding.setVariable('env', env)
binding.setVariable('any', 'any')
binding.setVariable('none', 'none')
binding.setVariable('scm', 'scm')
binding.setVariable('currentBuild', [result: 'SUCCESS', currentResult: 'SUCCESS', number: 1])

// --- declarative structure -------------------------------------------------------------------
['pipeline', 'options', 'parameters', 'stages', 'steps', 'post', 'triggers', 'tools',
 'always', 'success', 'failure', 'unstable', 'aborted', 'changed', 'fixed', 'regression',
 'unsuccessful', 'notBuilt', 'cleanup'].each { String name ->
    binding.setVariable(name, { Closure body -> block(name, null, body) })
}
binding.setVariable('agent', { Object spec ->
    if (spec instanceof Closure) {
        block('agent', null, spec)
    } else {
        note('agent', spec)
    }
})
binding.setVariable('label', { Object name -> note('label', name) })
binding.setVariable('pollSCM', { String spec -> note('pollSCM', [spec]) })
binding.setVariable('stage', { String name, Closure body ->
    record.stages << name
    block("stage:${name}".toString(), name, body)
})
binding.setVariable('environment', { Closure body ->
    note('environment', null)
    EnvironmentBlock assigned = new EnvironmentBlock(binding)
    body.resolveStrategy = Closure.DELEGATE_FIRST
    body.delegate = assigned
    body.call()
    assigned.assignments().each { k, v ->
        record.environment[k.toString()] = v.toString()
        env[k.toString()] = v.toString()
    }
})

// --- options and parameters ------------------------------------------------------------------
['timestamps', 'disableConcurrentBuilds', 'buildDiscarder', 'skipDefaultCheckout', 'ansiColor'].each { String name ->
    binding.setVariable(name, { Object... args ->
        Object body = args ? args[-1] : null
        if (body instanceof Closure) {
            return block(name, (args as List).subList(0, args.length - 1), body)
        }
        record.options << name
        note(name, args as List)
        return [option: name, args: plain(args as List)]
    })
}
binding.setVariable('logRotator', { Map args -> [logRotator: plain(args)] })
binding.setVariable('timeout', { Object... args ->
    Object body = args ? args[-1] : null
    if (body instanceof Closure) {      // timeout(time: ...) { ... } as a step
        return block('timeout', (args as List).subList(0, args.length - 1), body)
    }
    record.options << 'timeout'
    note('timeout', args as List)
})
binding.setVariable('choice', { Map args ->
    List choices = args.choices instanceof String ? args.choices.readLines() : args.choices as List
    Map entry = [type: 'choice', name: args.name, choices: plain(choices), default: plain(choices[0]),
                 description: plain(args.description)]
    record.parameters << entry
    declare(args.name.toString(), choices[0], { String text -> choices.find { it.toString() == text } })
    note('choice', args)
})
binding.setVariable('booleanParam', { Map args ->
    record.parameters << [type: 'boolean', name: args.name, default: args.defaultValue ?: false]
    declare(args.name.toString(), args.defaultValue ?: false,
            { String text -> text in ['true', 'false'] ? text == 'true' : null })
    note('booleanParam', args)
})
// `string` is a parameter in parameters {} and a credential binding in withCredentials([...]).
binding.setVariable('string', { Map args ->
    if (args.containsKey('credentialsId')) {
        return [type: 'string', credentialsId: args.credentialsId, variables: [args.variable]]
    }
    record.parameters << [type: 'string', name: args.name, default: plain(args.defaultValue ?: ''),
                          description: plain(args.description)]
    declare(args.name.toString(), (args.defaultValue ?: '').toString(), { String text -> text })
    note('string', args)
})

// --- credentials -----------------------------------------------------------------------------
binding.setVariable('usernamePassword', { Map args ->
    [type: 'usernamePassword', credentialsId: args.credentialsId,
     variables: [args.usernameVariable, args.passwordVariable]]
})
binding.setVariable('aws', { Map args ->
    [type: 'AmazonWebServicesCredentialsBinding', credentialsId: args.credentialsId,
     variables: [args.accessKeyVariable ?: 'AWS_ACCESS_KEY_ID', args.secretKeyVariable ?: 'AWS_SECRET_ACCESS_KEY']]
})
binding.setVariable('withCredentials', { List bindings, Closure body ->
    List<Map> resolved = bindings.collect { Map b ->
        if (b.containsKey('$class')) {      // [$class: 'AmazonWebServicesCredentialsBinding', ...]
            Map r = [type: b['$class'], credentialsId: b.credentialsId]
            if (b['$class'] == 'AmazonWebServicesCredentialsBinding') {
                r.variables = [b.accessKeyVariable ?: 'AWS_ACCESS_KEY_ID',
                               b.secretKeyVariable ?: 'AWS_SECRET_ACCESS_KEY']
            } else {
                r.variables = b.findAll { k, v -> k.toString().endsWith('Variable') }.values().collect { it.toString() }
            }
            return r
        }
        return b
    }
    resolved.each { Map b -> record.credentials << plain(b + [context: context.join('/')]) }
    // Inside the block the variables exist, masked: a Groovy "${env.X}" would show up as <masked:X>.
    Map saved = new LinkedHashMap(env)
    resolved.each { Map b -> b.variables.each { v -> env[v.toString()] = "<masked:${v}>".toString() } }
    activeCredentials.addAll(resolved)
    try {
        block('withCredentials', resolved.collect { it.credentialsId }, body)
    } finally {
        resolved.each { activeCredentials.remove(it) }
        env.clear()
        env.putAll(saved)
    }
})

// --- steps -----------------------------------------------------------------------------------
binding.setVariable('sh', { Object args ->
    Map options = args instanceof Map ? args : [script: args]
    record.sh << [
        script     : options.script.toString(),
        interpolated: options.script instanceof GString,
        returnStatus: options.returnStatus ?: false,
        returnStdout: options.returnStdout ?: false,
        context    : context.join('/'),
        credentials: activeCredentials.collect { [credentialsId: it.credentialsId, variables: plain(it.variables)] },
        env        : new TreeMap(env).keySet() as List,
        // What the step's shell sees (credential variables as <masked:NAME>): run the script with these.
        envValues  : new TreeMap(env),
    ]
    note('sh', options)
    return options.returnStdout ? '' : 0
})
binding.setVariable('junit', { Object args ->
    Map options = args instanceof Map ? args : [testResults: args]
    record.junit << [testResults: options.testResults.toString(),
                     allowEmptyResults: options.allowEmptyResults ?: false, context: context.join('/')]
    note('junit', options)
})
binding.setVariable('archiveArtifacts', { Object args ->
    Map options = args instanceof Map ? args : [artifacts: args]
    record.archive << [artifacts: options.artifacts.toString(),
                       allowEmptyArchive: options.allowEmptyArchive ?: false, context: context.join('/')]
    note('archiveArtifacts', options)
})
binding.setVariable('publishHTML', { Map args ->
    Map target = args.target as Map
    record.html << [reportDir: target.reportDir.toString(), reportFiles: target.reportFiles.toString(),
                    reportName: target.reportName.toString(), allowMissing: target.allowMissing ?: false,
                    keepAll: target.keepAll ?: false, context: context.join('/')]
    note('publishHTML', target)
})
// Warnings NG and Coverage: the parameters each accepts are its @DataBoundSetter properties (its
// @DataBoundConstructor's too), read at the pinned tags: warnings-ng 13.10153.v011f47a_3ef01
// (core/steps/RecordIssuesStep.java, core/model/Tool.java, core/model/ReportScanningTool.java,
// warnings/RegisteredParser.java) and coverage 3.3278.va_04d3e352354 (metrics/steps/CoverageStep.java,
// CoverageTool.java). Jenkins refuses any other name (DescribableModel), so this harness does too.
Map<String, List<String>> accepted = [
    recordIssues  : ['scm', 'qualityGates', 'id', 'name', 'icon', 'toolProxies', 'tools', 'tool',
                     'sourceCodeEncoding', 'sourceDirectories', 'sourceCodeRetention', 'aggregatingResults',
                     'quiet', 'skipBlames', 'skipPostProcessing', 'skipDeltaCalculation', 'skipPublishingChecks',
                     'checksAnnotationScope', 'publishAllIssues', 'enabledForFailure', 'ignoreQualityGate',
                     'failOnError', 'stopBuild', 'healthy', 'unhealthy', 'minimumSeverity', 'trendChartType',
                     'filters'],
    tool          : ['id', 'name', 'icon', 'pattern', 'skipSymbolicLinks', 'reportEncoding', 'linesLookAhead'],
    recordCoverage: ['tools', 'qualityGates', 'id', 'name', 'skipPublishingChecks', 'checksName',
                     'checksAnnotationScope', 'skipSymbolicLinks', 'ignoreParsingErrors', 'failOnError',
                     'enabledForFailure', 'sourceCodeEncoding', 'sourceDirectories', 'sourceCodeRetention', 'scm'],
    coverageTool  : ['parser', 'pattern'],
]
// CoverageTool.Parser's constants at that tag: a parser is named by one of them.
List<String> coverageParsers = ['COBERTURA', 'CLOVER', 'GO_COV', 'JACOCO', 'JUNIT', 'LCOV', 'METRICS', 'NUNIT',
                                'OPENCOVER', 'PIT', 'STRYKER', 'VECTORCAST', 'XUNIT']
def refuse = { String what, Map args, List<String> known ->
    List<String> unknown = args.keySet().collect { it.toString() }.findAll { !(it in known) }
    if (unknown) {
        System.err.println("${what}: no parameter ${unknown.join(', ')} (Jenkins refuses it; it takes: ${known.join(', ')})")
        System.exit(1)
    }
}
// A Warnings NG tool: the symbol (the tool's @Symbol), its parameters; analysisParser also takes the
// analysis-model registry's id (RegisteredParser's @DataBoundConstructor).
['pyLint', 'myPy', 'hadoLint', 'sarif', 'analysisParser'].each { String symbol ->
    binding.setVariable(symbol, { Map args ->
        List<String> known = accepted.tool + (symbol == 'analysisParser' ? ['analysisModelId'] : [])
        refuse(symbol, args, known)
        if (symbol == 'analysisParser' && !args.analysisModelId) {
            System.err.println('analysisParser: analysisModelId is required')
            System.exit(1)
        }
        note(symbol, args)
        return [symbol: symbol] + plain(args)
    })
}
binding.setVariable('recordIssues', { Map args ->
    refuse('recordIssues', args, accepted.recordIssues)
    List tools = args.tools != null ? args.tools as List : (args.tool != null ? [args.tool] : [])
    record.issues << [tools: plain(tools), enabledForFailure: args.enabledForFailure ?: false,
                      failOnError: args.failOnError ?: false, qualityGates: plain(args.qualityGates ?: []),
                      context: context.join('/')]
    note('recordIssues', args)
})
binding.setVariable('recordCoverage', { Map args ->
    refuse('recordCoverage', args, accepted.recordCoverage)
    (args.tools as List).each { Map tool ->
        refuse('recordCoverage tools', tool, accepted.coverageTool)
        if (!(tool.parser in coverageParsers)) {
            System.err.println("recordCoverage: parser ${tool.parser} is none of ${coverageParsers.join(', ')}")
            System.exit(1)
        }
    }
    record.coverage << [tools: plain(args.tools), id: plain(args.id), name: plain(args.name),
                        enabledForFailure: args.enabledForFailure ?: false, failOnError: args.failOnError ?: false,
                        qualityGates: plain(args.qualityGates ?: []), context: context.join('/')]
    note('recordCoverage', args)
})
binding.setVariable('dir', { String path, Closure body -> block('dir', path, body) })
binding.setVariable('deleteDir', { -> note('deleteDir', null) })
binding.setVariable('echo', { Object message -> note('echo', message) })
binding.setVariable('checkout', { Object what -> note('checkout', what) })

// --- evaluate --------------------------------------------------------------------------------
try {
    new GroovyShell(binding).evaluate(jenkinsfile.getText('UTF-8'), 'Jenkinsfile')
} catch (MissingMethodException e) {
    System.err.println("Jenkinsfile calls a step this harness does not know: ${e.method}(${e.arguments*.getClass()*.simpleName.join(', ')})")
    System.exit(1)
} catch (MissingPropertyException e) {
    System.err.println("Jenkinsfile reads an unknown name: ${e.property}")
    System.exit(1)
}
List<String> unknown = given.keySet().findAll { !params.containsKey(it) } as List
if (unknown) {
    String declared = params.keySet().join(', ') ?: 'none'
    System.err.println("run_jenkinsfile.groovy: --param ${unknown.join(', ')}: the Jenkinsfile declares no such parameter (it declares: ${declared})")
    System.exit(2)
}
println JsonOutput.prettyPrint(JsonOutput.toJson(record))
