# frozen_string_literal: true
#
# Renders every job template of the release the way a BOSH Director does, without one: the
# manifest with its ops files applied (go-patch `replace` / `remove`), its `((variables))`
# generated (passwords; certificates really signed by their CA with OpenSSL) or read from a vars
# file, links resolved between the jobs of the deployment, and each template evaluated with ERB
# (trim mode '-') against `p`, `if_p`, `link`, `if_link` and `spec`, seeing only the properties
# the job's spec declares (their defaults where the manifest sets none). A missing property
# without a default, an undeclared property, a missing link or a template that raises makes the
# run fail (exit 1, the reason on stderr).
#
#   ruby render.rb --release DIR --manifest FILE [--ops FILE]... [--vars FILE] --out DIR
#
# Writes OUT/<instance group>/<index>/<job>/<destination> and OUT/report.json: the release's
# job and package specs, the final manifest, every rendered file and each parsed bpm.yml, the
# CA private keys (which no rendered file may contain) and every secret value (which only
# files made private may contain).

require 'erb'
require 'fileutils'
require 'json'
require 'openssl'
require 'optparse'
require 'ostruct'
require 'securerandom'
require 'yaml'

def load_yaml(path)
  YAML.safe_load(File.read(path), aliases: true) || {}
end

# go-patch, the parts ops files use: replace and remove; paths with keys, indexes, `-`,
# `name=value` selectors and `?` (create what is missing from there on).
module GoPatch
  module_function

  def apply(doc, op)
    tokens = op.fetch('path').split('/', -1)
    raise "ops path must start with /: #{op['path']}" unless tokens.shift == ''
    type = op.fetch('type')
    raise "unsupported op type #{type}" unless %w[replace remove].include?(type)

    optional = false
    obj = doc
    tokens.each_with_index do |raw, i|
      last = i == tokens.size - 1
      optional ||= raw.end_with?('?')
      tok = raw.chomp('?')
      if obj.is_a?(Array)
        idx = array_index(obj, tok, optional, last, type, op)
        return if idx.nil?

        if last
          type == 'replace' ? obj[idx] = op['value'] : obj.delete_at(idx)
        else
          obj = obj[idx]
        end
      elsif obj.is_a?(Hash)
        if last
          raise "ops: #{op['path']}: no key #{tok}" unless obj.key?(tok) || optional
          type == 'replace' ? obj[tok] = op['value'] : obj.delete(tok)
        else
          unless obj.key?(tok)
            raise "ops: #{op['path']}: no key #{tok}" unless optional
            obj[tok] = tokens[i + 1] =~ /\A(-|\d+|.*=.*)\??\z/ ? [] : {}
          end
          obj = obj[tok]
        end
      else
        raise "ops: #{op['path']}: cannot descend into #{obj.inspect}"
      end
    end
  end

  def array_index(arr, tok, optional, last, type, op)
    if tok == '-'
      raise "ops: #{op['path']}: - must be last" unless last && type == 'replace'
      arr << op['value']
      return nil
    end
    return Integer(tok) if tok =~ /\A-?\d+\z/

    key, value = tok.split('=', 2)
    raise "ops: #{op['path']}: bad token #{tok}" if value.nil?
    idx = arr.index { |e| e.is_a?(Hash) && e[key].to_s == value }
    return idx if idx
    raise "ops: #{op['path']}: nothing matches #{tok}" unless optional

    arr << { key => value }
    arr.size - 1
  end
end

# The variables of the manifest, generated like the Director's config server does.
class Variables
  attr_reader :ca_private_keys

  def initialize(manifest, vars, addresses)
    @defs = (manifest['variables'] || []).to_h { |v| [v.fetch('name'), v] }
    @vars = vars
    @addresses = addresses
    @values = {}
    @ca_private_keys = []
  end

  # Every secret value: generated passwords and private keys, and the given variables whose
  # name says password or secret.
  def secrets
    given = @vars.select { |k, _| k =~ /password|secret/ }.values.map(&:to_s)
    generated = @values.values.flat_map { |v| v.is_a?(Hash) ? [v['private_key']] : [v] }
    (given + generated).uniq
  end

  def [](name)
    return @vars[name] if @vars.key?(name)
    @values[name] ||= generate(@defs.fetch(name) { raise "variable ((#{name})) is neither defined nor given" })
  end

  private

  def generate(var)
    opts = var['options'] || {}
    case var.fetch('type')
    when 'password' then SecureRandom.alphanumeric(Integer(opts.fetch('length', 20)))
    when 'certificate' then certificate(var, opts)
    else raise "variable type #{var['type']} not supported by the harness"
    end
  end

  def certificate(var, opts)
    key = OpenSSL::PKey::RSA.new(2048)
    cert = OpenSSL::X509::Certificate.new
    cert.version = 2
    cert.serial = OpenSSL::BN.rand(64)
    cert.subject = OpenSSL::X509::Name.new([['CN', opts.fetch('common_name', var['name'])]])
    cert.public_key = key.public_key
    cert.not_before = Time.now - 60
    cert.not_after = Time.now + 365 * 86_400
    if opts['is_ca']
      issuer_cert = cert
      issuer_key = key
    else
      ca = self[opts.fetch('ca') { raise "certificate #{var['name']} names no ca" }]
      issuer_cert = OpenSSL::X509::Certificate.new(ca.fetch('certificate'))
      issuer_key = OpenSSL::PKey::RSA.new(ca.fetch('private_key'))
    end
    cert.issuer = issuer_cert.subject
    ext = OpenSSL::X509::ExtensionFactory.new(issuer_cert, cert)
    if opts['is_ca']
      cert.add_extension(ext.create_extension('basicConstraints', 'CA:TRUE', true))
      cert.add_extension(ext.create_extension('keyUsage', 'keyCertSign,cRLSign', true))
    else
      cert.add_extension(ext.create_extension('basicConstraints', 'CA:FALSE', true))
      cert.add_extension(ext.create_extension('keyUsage', 'digitalSignature,keyEncipherment', true))
      eku = (opts['extended_key_usage'] || []).map { |u| { 'server_auth' => 'serverAuth', 'client_auth' => 'clientAuth' }.fetch(u) }
      cert.add_extension(ext.create_extension('extendedKeyUsage', eku.join(','))) unless eku.empty?
      sans = alternative_names(var, opts)
      cert.add_extension(ext.create_extension('subjectAltName', sans.join(','))) unless sans.empty?
    end
    cert.sign(issuer_key, OpenSSL::Digest.new('SHA256'))
    @ca_private_keys << key.to_pem if opts['is_ca']
    { 'certificate' => cert.to_pem, 'private_key' => key.to_pem, 'ca' => issuer_cert.to_pem }
  end

  def alternative_names(var, opts)
    names = (opts['alternative_names'] || []).dup
    from = var.dig('consumes', 'alternative_name', 'from')
    names << @addresses.fetch(from) { raise "certificate #{var['name']}: no address link #{from}" } if from
    names.map { |n| n =~ /\A[\d.]+\z/ ? "IP:#{n}" : "DNS:#{n}" }
  end
end

# Replaces `((name))` and `((name.field))` everywhere in a document.
def interpolate(obj, variables)
  case obj
  when Hash then obj.transform_values { |v| interpolate(v, variables) }
  when Array then obj.map { |v| interpolate(v, variables) }
  when String
    lookup = lambda do |ref|
      name, *path = ref.delete_prefix('/').split('.')
      value = variables[name]
      path.empty? ? value : value.dig(*path) || raise("((#{ref})): no field #{path.join('.')}")
    end
    if obj =~ /\A\(\(([^()]+)\)\)\z/
      lookup.call(Regexp.last_match(1))
    else
      obj.gsub(/\(\(([^()]+)\)\)/) { lookup.call(Regexp.last_match(1)).to_s }
    end
  else obj
  end
end

# A job's properties as its templates see them.
class Properties
  def initialize(spec_properties, values, job)
    @declared = spec_properties || {}
    @values = values || {}
    @job = job
  end

  def declared?(name)
    @declared.key?(name)
  end

  # The manifest's value, else the spec's default; nil when neither.
  def lookup(name)
    raise "job #{@job}: property '#{name}' is not declared in its spec" unless declared?(name)
    value = name.split('.').reduce(@values) { |h, k| h.is_a?(Hash) ? h[k] : nil }
    value.nil? ? (@declared[name] || {})['default'] : value
  end
end

# What `if_p` and `if_link` return: `.else { }` runs when the block did not.
class ElseBlock
  def initialize(active)
    @active = active
  end

  def else
    yield if @active
  end
end

# Common part of templates and links: `p` and `if_p` over a Properties.
module PropertyAccess
  def p(*args)
    names = Array(args[0])
    names.each do |name|
      value = @properties.lookup(name)
      return value unless value.nil?
    end
    return args[1] if args.length > 1

    raise "Can't find property '#{names.join("', '")}'"
  end

  def if_p(*names)
    values = names.map { |n| @properties.lookup(n) }
    return ElseBlock.new(true) if values.any?(&:nil?)

    yield(*values)
    ElseBlock.new(false)
  end
end

# A resolved link as `link(name)` returns it.
class Link
  include PropertyAccess
  attr_reader :address, :instances

  def initialize(properties, address, instances)
    @properties = properties
    @address = address
    @instances = instances
  end
end

# The ERB evaluation context of one template of one instance.
class Context
  include PropertyAccess
  attr_reader :spec

  def initialize(properties, spec, links)
    @properties = properties
    @spec = spec
    @links = links
  end

  def link(name)
    @links.fetch(name) { raise "Can't find link '#{name}'" }
  end

  def if_link(name)
    return ElseBlock.new(true) unless @links[name]

    yield @links[name]
    ElseBlock.new(false)
  end

  def render(template)
    ERB.new(template, trim_mode: '-').result(binding)
  end
end

# The release, the deployment, and the rendering of every template of every instance.
class Harness
  def initialize(release_dir, manifest, vars)
    @release = release_dir
    @jobs = Dir[File.join(release_dir, 'jobs', '*', 'spec')].sort.to_h do |f|
      [File.basename(File.dirname(f)), load_yaml(f)]
    end
    @packages = Dir[File.join(release_dir, 'packages', '*', 'spec')].sort.to_h do |f|
      [File.basename(File.dirname(f)), load_yaml(f)]
    end
    @name = manifest.fetch('name')
    @dns = manifest.dig('features', 'use_dns_addresses')
    @groups = manifest.fetch('instance_groups')
    @variables = Variables.new(manifest, vars, address_links)
    @manifest = interpolate(manifest, @variables)
    @groups = @manifest.fetch('instance_groups')
  end

  def run(out)
    FileUtils.rm_rf(out)
    FileUtils.mkdir_p(out)
    rendered = []
    @groups.each_with_index do |group, g|
      Integer(group.fetch('instances')).times do |index|
        group.fetch('jobs').each do |job|
          next unless job['release'] == 'osb'

          rendered << render_job(out, group, g, index, job)
        end
      end
    end
    report = {
      'release' => { 'jobs' => @jobs, 'packages' => @packages },
      'manifest' => @manifest,
      'rendered' => rendered,
      'ca_private_keys' => @variables.ca_private_keys,
      'secrets' => @variables.secrets
    }
    File.write(File.join(out, 'report.json'), JSON.pretty_generate(report))
  end

  private

  def group_address(group)
    network = group.fetch('networks').first.fetch('name')
    @dns ? "q-s0.#{group['name']}.#{network}.#{@name}.bosh" : "10.0.#{@groups.index(group)}.10"
  end

  # Custom `address` links (for certificates): alias => the providing group's address.
  def address_links
    @groups.each_with_object({}) do |group, acc|
      group.fetch('jobs').each do |job|
        (job['custom_provider_definitions'] || []).each do |d|
          as = job.dig('provides', d['name'], 'as') || d['name']
          acc[as] = group_address(group)
        end
      end
    end
  end

  # Every provider of the deployment: {alias, name, type, group, job}.
  def providers
    @providers ||= @groups.flat_map do |group|
      group.fetch('jobs').flat_map do |job|
        spec = @jobs[job['name']] || {}
        (spec['provides'] || []).map do |prov|
          as = job.dig('provides', prov['name'], 'as') || prov['name']
          { alias: as, name: prov['name'], type: prov['type'], group: group, job: job,
            properties: prov['properties'] || [] }
        end
      end
    end
  end

  def links_for(group, job, spec)
    (spec['consumes'] || []).each_with_object({}) do |con, acc|
      wiring = job['consumes'] || {}
      # `consumes: {name: nil}` turns the link off (an optional one; a required one fails).
      if wiring.key?(con['name']) && wiring[con['name']].nil?
        next if con['optional']

        raise "#{group['name']}/#{job['name']}: required link #{con['name']} is turned off"
      end
      from = wiring.dig(con['name'], 'from')
      candidates = providers.select { |p| p[:type] == con['type'] && (from.nil? || p[:alias] == from) }
      if candidates.size > 1
        raise "#{group['name']}/#{job['name']}: link #{con['name']} is ambiguous: #{candidates.map { |c| c[:alias] }}"
      end
      if candidates.empty?
        next if con['optional']

        raise "#{group['name']}/#{job['name']}: no provider for link #{con['name']} (#{con['type']})"
      end
      prov = candidates.first
      pspec = @jobs.fetch(prov[:job]['name'])
      allowed = pspec.fetch('properties', {}).select { |k, _| prov[:properties].include?(k) }
      props = Properties.new(allowed, prov[:job]['properties'], prov[:job]['name'])
      instances = Integer(prov[:group]['instances']).times.map do |i|
        OpenStruct.new(name: prov[:group]['name'], index: i, id: "#{prov[:group]['name']}-#{i}",
                       az: 'z1', address: "#{prov[:group]['name']}-#{i}.#{@name}.bosh", bootstrap: i.zero?)
      end
      acc[con['name']] = Link.new(props, group_address(prov[:group]), instances)
    end
  end

  def instance_spec(group, g, index, job)
    network = group.fetch('networks').first.fetch('name')
    id = format('%08x-0000-4000-8000-%012x', g, index)
    OpenStruct.new(
      name: group['name'], index: index, id: id, az: Array(group['azs']).first,
      deployment: @name, bootstrap: index.zero?, ip: "10.0.#{g}.#{10 + index}",
      address: "#{id}.#{group['name']}.#{network}.#{@name}.bosh",
      networks: { network => OpenStruct.new(ip: "10.0.#{g}.#{10 + index}") },
      job: OpenStruct.new(name: job['name']), release: OpenStruct.new(name: 'osb')
    )
  end

  # The Director refuses a manifest wiring links its jobs do not declare.
  def check_wiring(group, job, spec)
    custom = (job['custom_provider_definitions'] || []).map { |d| d['name'] }
    { 'provides' => spec['provides'], 'consumes' => spec['consumes'] }.each do |kind, declared|
      names = (declared || []).map { |l| l['name'] } + (kind == 'provides' ? custom : [])
      (job[kind] || {}).each_key do |link|
        next if names.include?(link)

        raise "#{group['name']}/#{job['name']}: #{kind} #{link}, which the job does not declare"
      end
    end
  end

  def render_job(out, group, g, index, job)
    name = job.fetch('name')
    spec = @jobs.fetch(name) { raise "instance group #{group['name']}: the release has no job #{name}" }
    check_wiring(group, job, spec)
    props = Properties.new(spec['properties'], job['properties'], name)
    ctx = Context.new(props, instance_spec(group, g, index, job), links_for(group, job, spec))
    dir = File.join(out, group['name'], index.to_s, name)
    files = {}
    bpm = nil
    spec.fetch('templates', {}).each do |src, dest|
      path = File.join(@release, 'jobs', name, 'templates', src)
      begin
        text = ctx.render(File.read(path))
      rescue StandardError => e
        raise "#{group['name']}/#{index} job #{name} template #{src}: #{e.message}"
      end
      target = File.join(dir, dest)
      FileUtils.mkdir_p(File.dirname(target))
      File.write(target, text)
      files[dest] = target
      bpm = YAML.safe_load(text) if dest == 'config/bpm.yml'
    end
    { 'instance_group' => group['name'], 'index' => index, 'job' => name, 'files' => files, 'bpm' => bpm }
  end
end

options = { ops: [], vars: nil }
OptionParser.new do |o|
  o.on('--release DIR') { |v| options[:release] = v }
  o.on('--manifest FILE') { |v| options[:manifest] = v }
  o.on('--ops FILE') { |v| options[:ops] << v }
  o.on('--vars FILE') { |v| options[:vars] = v }
  o.on('--out DIR') { |v| options[:out] = v }
end.parse!
%i[release manifest out].each { |k| abort "missing --#{k}" unless options[k] }

begin
  manifest = load_yaml(options[:manifest])
  options[:ops].each { |f| load_yaml(f).each { |op| GoPatch.apply(manifest, op) } }
  vars = options[:vars] ? load_yaml(options[:vars]) : {}
  Harness.new(options[:release], manifest, vars).run(options[:out])
rescue StandardError => e
  warn "render failed: #{e.message}"
  exit 1
end
